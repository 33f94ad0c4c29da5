//! What several subcommands share: the face detector and device flags, Ctrl-C handling.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use host_trainer::model::ComputeDevice;

/// `--face-detector`: the RetinaFace model that finds faces.
#[derive(clap::Args, Debug, Clone)]
pub struct FaceDetectorArg {
    /// RetinaFace ONNX model that finds the faces (`make setup` puts it here).
    #[arg(long = "face-detector", alias = "model", default_value = facekit::RETINAFACE_MODEL)]
    pub path: PathBuf,
}

/// `--device`: where tch runs.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct DeviceArg {
    /// auto (CUDA when available), cpu or cuda.
    #[arg(long = "device", value_enum, default_value_t)]
    pub device: ComputeDevice,
}

impl DeviceArg {
    pub fn resolve(self) -> Result<tch::Device> {
        self.device
            .resolve()
            .context("choosing the device (see `host-trainer doctor`)")
    }
}

/// A flag the first Ctrl-C sets (the work in flight finishes and is saved); a second Ctrl-C
/// exits at once.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing the work in flight and saving (Ctrl-C again to abort)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// A finite number above zero (a cutoff, a sigma): NaN or infinity would reach the maths as is.
pub fn positive(text: &str) -> std::result::Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{text:?} is not a finite number above 0")),
    }
}

/// A finite number of zero or more.
pub fn non_negative(text: &str) -> std::result::Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text:?} is not a finite number of 0 or more")),
    }
}
