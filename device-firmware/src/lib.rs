//! The doppel booth daemon as a library, so tests drive exactly what the binary runs.
//!
//! Today: the offline detection slice ([`offline`]) — frames from a file, RetinaFace via tract,
//! detections as JSON lines and an annotated contact sheet drawn with `embedded-graphics`.

pub mod offline;
