//! The doppel booth: camera → faces → swap or deepfake score → display, on aarch64 Linux.
//!
//! Data flow, one module each: [`source`] (camera, file, folder) → [`pipeline`] (detect,
//! smooth, align, swap/score through the bundle's models from [`models`]) → [`overlay`]
//! (embedded-graphics HUD and the SYNTHETIC label) → [`display`] (framebuffer, SPI LCD, MJPEG,
//! PNG). [`daemon`] runs them on threads; [`button`] and signals steer it; [`config`] holds the
//! settings. [`find_faces`] is the batch face-finding tool (`doppel-device find-faces`).

pub mod button;
pub mod config;
pub mod daemon;
pub mod display;
pub mod find_faces;
pub mod models;
pub mod overlay;
pub mod pipeline;
pub mod source;
pub mod store;
pub mod updates;
