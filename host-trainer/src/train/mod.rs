//! `host-trainer train`: the shared-encoder / two-decoder face-swap autoencoder.

pub mod augment;
