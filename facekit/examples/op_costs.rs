//! Per-node time and FLOPs of an ONNX model in tract: `cargo run --release -p facekit --example
//! op_costs -- model.onnx 1,3,64,64 [--fold]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let shape: Vec<usize> = args[2].split(',').map(|d| d.parse().unwrap()).collect();
    let fold = args.iter().any(|a| a == "--fold");
    let ops = facekit::onnx_model::profile_ops(std::path::Path::new(&args[1]), &shape, fold, 30)
        .expect("model profiles");
    println!("| node | op | ms | MFLOP | GFLOP/s |");
    println!("|---|---|---|---|---|");
    for o in ops.iter().filter(|o| o.ms > 0.02) {
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.1} |",
            o.node,
            o.op,
            o.ms,
            o.flops / 1e6,
            o.flops / (o.ms * 1e6)
        );
    }
    let (ms, fl): (f64, f64) = (
        ops.iter().map(|o| o.ms).sum(),
        ops.iter().map(|o| o.flops).sum(),
    );
    println!(
        "total {ms:.2} ms, {:.0} MFLOP, {:.1} GFLOP/s",
        fl / 1e6,
        fl / (ms * 1e6)
    );
}
