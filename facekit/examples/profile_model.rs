//! Where tract spends its time in an ONNX model: per-operator totals over repeated runs.
//!
//! `cargo run --release -p facekit --example profile_model -- models/retinaface-mnet025.onnx 1,3,240,320`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (path, shape) = (&args[1], &args[2]);
    let shape: Vec<usize> = shape.split(',').map(|d| d.parse().unwrap()).collect();
    let plan = facekit::onnx_model::onnx()
        .model_for_path(path)?
        .with_input_fact(0, f32::fact(&shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let input: Tensor = tract_ndarray::ArrayD::<f32>::from_elem(shape.clone(), 0.5).into();
    let mut by_op: HashMap<String, (Duration, usize)> = HashMap::new();
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        let mut state = TypedSimpleState::new(&plan)?;
        state.run_plan_with_eval(
            tvec!(input.clone().into()),
            |ctx, op_state, node, inputs| {
                let t = Instant::now();
                let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                let name = node.op().name().to_string();
                let e = by_op.entry(name).or_default();
                e.0 += t.elapsed();
                e.1 += 1;
                r
            },
        )?;
    }
    let total = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
    let mut rows: Vec<_> = by_op.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
    println!("{path} {shape:?}: {total:.2} ms per run (with profiling overhead)");
    println!("| operator | ms per run | nodes | share |");
    println!("|---|---|---|---|");
    let sum: f64 = rows.iter().map(|r| r.1 .0.as_secs_f64()).sum();
    for (name, (d, n)) in rows.iter().take(15) {
        let ms = d.as_secs_f64() * 1e3 / runs as f64;
        println!(
            "| {name} | {ms:.2} | {} | {:.0}% |",
            n / runs,
            100.0 * d.as_secs_f64() / sum
        );
    }
    Ok(())
}
