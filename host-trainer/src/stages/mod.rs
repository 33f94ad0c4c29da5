//! The stages of the data flow, one module each. A stage reads the artefact folders of the
//! stages before it (`crate::artefacts`) and writes its own; it never imports another stage.
//!
//! extract → dataset → train → run → eval (eval.json) / convert (video) → fake_detector
//! (detector folder) → export (bundle) → deploy (to booths); detect_fakes scores a video with a bundle.

pub mod convert;
pub mod deploy;
pub mod detect_fakes;
pub mod eval;
pub mod export;
pub mod extract;
pub mod fake_detector;
pub mod train;
