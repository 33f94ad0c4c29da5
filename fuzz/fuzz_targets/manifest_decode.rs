//! Any bytes as a bundle manifest or a crop spec envelope: decoding and validation must answer
//! with a value or an error, never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::bundle::Manifest;
use shared_proto::{decode, FaceCropSpec};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode::<Manifest>(shared_proto::bundle::MANIFEST_KIND, data) {
        let _ = m.validate();
        let _ = m.fake_threshold();
    }
    if let Ok(c) = decode::<FaceCropSpec>("face-crop-spec", data) {
        if c.validate().is_ok() {
            let _ = c.template_px();
        }
    }
});
