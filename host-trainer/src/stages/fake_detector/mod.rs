//! `host-trainer train-detector` and `eval-detector`: the deepfake ("fake face") detector, a
//! MesoNet-class network trained on our own fakes, and an honest measure of how far it
//! generalises: each identity (one person, one video, one camera) is held out in turn, its cells
//! train on the others and test on it, per kind of fake, so no face, person, scene or camera of
//! the test was trained on.
//!
//! [`data`] makes the samples (reals and four kinds of fake at the detector's crop),
//! `batches` draws training batches, `fit` trains one detector, `blur` adds the blur check,
//! `camera` scores as a booth calibrated on its own camera,
//! `report` scores the cells,
//! [`train`] runs the whole report and saves the model, [`evaluate`] tests a saved one.

mod batches;
mod blur;
mod camera;
pub mod data;
pub mod evaluate;
mod fit;
pub mod metrics;
mod report;
pub mod train;

pub use evaluate::{evaluate, EvalOptions};
pub use fit::FitOptions;
pub use train::{train_detector, DetectorOptions};
