//! safetensors checkpoints: named tensors written atomically, read back, and copied into a
//! `VarStore` by prefix with every shape checked.

use std::collections::HashMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};

fn problem(path: &Path, problem: String) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        problem,
    }
}

/// Writes `named` to `path` through a synced `.part` file and a synced rename, so a crash or a
/// power cut mid-write leaves the previous checkpoint intact.
pub fn write(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    let tmp = path.with_extension("safetensors.part");
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&refs, &tmp).map_err(|e| problem(path, e.to_string()))?;
    crate::artefacts::commit_file(&tmp, path)
}

/// Every tensor of the checkpoint at `path`, by name.
pub fn read(path: &Path) -> Result<HashMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| problem(path, format!("unreadable ({e})")))?
        .into_iter()
        .collect())
}

/// Copies `prefix/<name>` of a checkpoint into every variable of `vars`, shapes checked.
pub fn restore(
    vars: &VarStore,
    prefix: &str,
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
    for (name, mut var) in vars.variables() {
        let src = tensors
            .get(&format!("{prefix}/{name}"))
            .ok_or_else(|| problem(path, format!("variable {prefix}/{name} missing")))?;
        if src.size() != var.size() {
            return Err(problem(
                path,
                format!(
                    "{prefix}/{name} has shape {:?}, model wants {:?} (different preset?)",
                    src.size(),
                    var.size()
                ),
            ));
        }
        tch::no_grad(|| var.f_copy_(&src.to_device(var.device())))
            .map_err(|e| problem(path, e.to_string()))?;
    }
    Ok(())
}

/// The generator's weights alone as fp16 (`g/…`, no optimiser or discriminator) and the step
/// they were saved at: a warm start or a snapshot, a tenth of a training checkpoint's size,
/// which [`load_generator`] widens back to f32.
pub fn write_generator_fp16(path: &Path, vars: &VarStore, step: i64) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vars
        .variables()
        .into_iter()
        .map(|(name, t)| (format!("g/{name}"), t.to_kind(tch::Kind::Half)))
        .collect();
    named.push(("opt_g/step".into(), Tensor::from(step)));
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| problem(path, e.to_string()))?;
    }
    write(path, &named)
}

/// The generator step recorded among `tensors` (0 when they do not say).
fn step_of(tensors: &HashMap<String, Tensor>) -> i64 {
    tensors
        .get("opt_g/step")
        .and_then(|t| i64::try_from(t).ok())
        .unwrap_or(0)
}

/// The step a checkpoint, warm start or snapshot was saved at (0 when it does not say).
pub fn saved_step(path: &Path) -> Result<i64> {
    Ok(step_of(&read(path)?))
}

/// Loads only the generator (`g/…`) weights of a training checkpoint into `vars`; returns the
/// step it was saved at.
pub fn load_generator(vars: &VarStore, path: &Path) -> Result<i64> {
    let tensors = read(path)?;
    restore(vars, "g", &tensors, path)?;
    Ok(step_of(&tensors))
}
