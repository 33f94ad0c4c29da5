//! host-trainer as a library: the CLI in `main.rs` and the benchmarks drive the same code.
//!
//! Modules follow the data flow: [`extract`] turns videos of consenting people into curated,
//! aligned face datasets; training and export build on those datasets.

pub mod doctor;
pub mod extract;
pub mod plot;
