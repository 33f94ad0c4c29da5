//! A whole bundle folder built from the input: two bytes of length, that many bytes of manifest
//! (signed with a key the check trusts, so the fuzzer reaches everything after the signature:
//! decoding, validation, paths, sizes, hashes), the rest the model file's bytes.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let len = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (manifest, model) = data[2..].split_at(len);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let key = SigningKey::from_bytes(&[7; 32]);
    std::fs::create_dir_all(d.join("models")).expect("models");
    std::fs::write(d.join("models/swap.onnx"), model).expect("model");
    std::fs::write(d.join("manifest.bin"), manifest).expect("manifest");
    let sig = key.sign(manifest);
    let text = format!(
        "ed25519 {} {}\n",
        hex(key.verifying_key().as_bytes()),
        hex(&sig.to_bytes())
    );
    std::fs::write(d.join("manifest.sig"), text).expect("sig");
    if let Ok(b) = shared_proto::bundle::open(d, &[key.verifying_key()]) {
        for m in &b.manifest.models {
            let _ = b.file(&m.file);
        }
    }
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
