//! The operator console in a real headless Chromium (Debian `chromium` + `chromium-driver`,
//! driven by selenium from scripts/peers/console_browser.py): log in (a wrong token is
//! refused), the live image changes, the mode switches, a rollback is triggered — and the booth
//! did each thing, checked through its API. `DOPPEL_UPDATE_DOCS=1` also copies the screenshots
//! into docs/console/ for the README.
// x86 only: it drives Chromium on this machine; the page and server are the same code on both.
#![cfg(not(target_arch = "aarch64"))]

mod common;

use std::process::Command;
use std::time::Duration;

use common::booth::{write_config, Booth};

#[test]
fn the_console_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let booth = Booth::start(&dir.path().join("state"), &config, &[]).unwrap();
    for serial in [2, 3] {
        let b = dir.path().join(format!("v{serial}"));
        common::write_bundle(&b, serial, true);
        booth.deploy(&b);
    }
    booth.wait_for("swapping", Duration::from_secs(30), |s| {
        s["live"]["swapped"].as_u64() > Some(0)
    });
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new(common::root().join(".venv/bin/python"))
        .arg(common::root().join("scripts/peers/console_browser.py"))
        .arg(&booth.url)
        .arg(&booth.token)
        .arg(&shots)
        .output()
        .expect("the venv's python with selenium (make setup)");
    assert!(
        out.status.success(),
        "console_browser.py failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(
        out.stdout
            .trim_ascii_end()
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    eprintln!("{seen:#}");
    assert_eq!(seen["login_shown"], true);
    assert_eq!(seen["wrong_token_refused"], true);
    assert!(seen["distinct_frames"].as_u64().unwrap() >= 2, "{seen}");
    assert!(
        seen["summary_before"]
            .as_str()
            .unwrap()
            .contains("bundle 3"),
        "{seen}"
    );
    assert_eq!(seen["mode_after"], "detect");
    // A calibration from the page: the threshold comes from this camera, and its faces'
    // texture was learnt (enough faces in 3 s of carphone).
    let message = seen["calibration_message"].as_str().unwrap();
    assert!(
        message.starts_with("threshold ") && message.contains("this camera's face texture learnt"),
        "{seen}"
    );
    assert!(
        seen["threshold_after_calibration"][0]
            .as_str()
            .unwrap()
            .contains("(calibration)"),
        "{seen}"
    );
    assert!(
        seen["rollback_message"]
            .as_str()
            .unwrap()
            .contains("serving 2"),
        "{seen}"
    );
    // The booth did what the page said.
    let s = booth.status();
    assert_eq!(s["live"]["mode"], "detect", "{s}");
    assert_eq!(s["serving"]["current"], 2, "{s}");
    for shot in [
        "console-login.png",
        "console.png",
        "console-after-rollback.png",
    ] {
        let img = image::open(shots.join(shot)).unwrap();
        assert!(img.width() >= 1000, "{shot}");
    }
    if std::env::var_os("DOPPEL_UPDATE_DOCS").is_some() {
        let docs = common::root().join("docs/console");
        std::fs::create_dir_all(&docs).unwrap();
        for shot in [
            "console-login.png",
            "console.png",
            "console-after-rollback.png",
        ] {
            std::fs::copy(shots.join(shot), docs.join(shot)).unwrap();
        }
    }
}
