//! The doppel booth: camera → faces → swap or deepfake score → display, on aarch64 Linux.
//!
//! Data flow, one module each: [`source`] (camera, file, folder) → [`pipeline`] (detect,
//! smooth, align, swap/score through the bundle's models from [`models`]) → [`overlay`]
//! (embedded-graphics HUD and the SYNTHETIC label) → [`display`] (framebuffer, SPI LCD, PNG,
//! the [`console`]'s live view). [`daemon`] runs them on threads (and tells systemd through [`service`]); [`button`], signals and the
//! [`console`] steer it; [`config`] holds the settings. Model updates: the [`store`] keeps
//! verified bundles in the state folder, [`updates`] activates them on trial and rolls back;
//! [`calibration`] sets the fake threshold per camera. [`find_faces`] is the batch
//! face-finding tool (`doppel-device find-faces`).

pub mod button;
pub mod calibration;
pub mod config;
pub mod console;
pub mod daemon;
pub mod display;
pub mod find_faces;
pub mod models;
pub mod overlay;
pub mod parallel;
pub mod pipeline;
pub mod service;
pub mod source;
pub mod store;
mod sync;
pub mod updates;
