//! Any text as the booth's TOML config: parsed and validated, or refused with a message.
#![no_main]

use device_firmware::config::DaemonConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = toml::from_str::<DaemonConfig>(text) {
            let _ = cfg.validate();
        }
    }
});
