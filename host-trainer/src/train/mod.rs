//! `host-trainer train`: the shared-encoder / two-decoder face-swap autoencoder.

pub mod augment;
pub mod config;
pub mod data;
pub mod losses;
pub mod optim;
pub mod run;
pub mod trainer;
