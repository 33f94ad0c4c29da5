//! `host-trainer export --deploy` and `host-trainer deploy --fleet` against real booths on
//! 127.0.0.1: a short real run is exported, sent to one booth, then to a fleet of two where
//! the second booth's token is wrong; the summary says which booths serve the bundle.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e_tests::{host_trainer, root, sample_pair, succeeded, train_pair, workspace_bin};

/// A booth on the looping sample video; returns it and its console URL.
fn booth(state: &Path, pubkey: &Path) -> (Child, String) {
    let config = state.with_extension("toml");
    std::fs::write(
        &config,
        "[button]\nkeyboard = false\n[console]\ntrial_frames = 10\n",
    )
    .unwrap();
    let mut child = Command::new(workspace_bin("doppel-device"))
        .current_dir(root())
        .args(["run", "--input", "data/carphone_pristine.mp4", "--loop"])
        .args(["--http", "127.0.0.1:0", "--threads", "1", "--state-dir"])
        .arg(state)
        .arg("--config")
        .arg(&config)
        .arg("--trust")
        .arg(pubkey)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("operator console: ") {
                let _ = tx.send(rest.split(' ').next().unwrap_or_default().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the booth prints its console address");
    (child, url.trim_end_matches('/').to_owned())
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn an_exported_bundle_is_deployed_to_a_booth_and_to_a_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = sample_pair(d);
    let run = d.join("run");
    succeeded(&train_pair(&a, &b, &run, &["--steps", "10"]), "train");
    let keys = d.join("keys");
    let pubkey = keys.join("host.pub");
    // The key exists before the booths start (they must trust it).
    succeeded(
        &host_trainer("keys", &["--dir", keys.to_str().unwrap()]),
        "keys",
    );
    let (b1, url1) = booth(&d.join("booth1"), &pubkey);
    let (b2, url2) = booth(&d.join("booth2"), &pubkey);
    let _booths = Killed(vec![b1, b2]);

    // export --deploy: the new bundle serves on booth 1 after its trial; the status is printed.
    let token1 = d.join("booth1/operator.token");
    let bundle1 = d.join("bundle1");
    let export = |bundle: &Path, serial: &str, extra: &[&str]| {
        let (r, b, k) = (
            run.to_str().unwrap(),
            bundle.to_str().unwrap(),
            keys.to_str().unwrap(),
        );
        let args = [
            &["--run", r, "--out", b, "--keys", k, "--serial", serial][..],
            extra,
        ]
        .concat();
        succeeded(&host_trainer("export", &args), "export")
    };
    let out = export(
        &bundle1,
        "100",
        &[
            "--deploy",
            &url1,
            "--deploy-token-file",
            token1.to_str().unwrap(),
        ],
    );
    assert!(out.contains("bundle 100"), "{out}");
    assert!(out.contains("passed its trial and serves"), "{out}");
    assert!(out.contains("serving   bundle 100"), "{out}");

    // Sending the same bundle again is refused (not newer) with the booth's reason.
    let again = host_trainer(
        "deploy",
        &[
            bundle1.to_str().unwrap(),
            "--to",
            &url1,
            "--token-file",
            token1.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("409") && err.contains("not newer"), "{err}");

    // A fleet: booth 1 first, then booth 2 — whose token file is wrong — in parallel.
    let bundle2 = d.join("bundle2");
    export(&bundle2, "101", &[]);
    std::fs::write(d.join("wrong.token"), "0".repeat(64)).unwrap();
    let fleet = d.join("booths.toml");
    std::fs::write(
        &fleet,
        format!(
            "[[booth]]\nname = \"first\"\nurl = \"{url1}\"\ntoken_file = \"booth1/operator.token\"\n\n\
             [[booth]]\nname = \"second\"\nurl = \"{url2}\"\ntoken_file = \"wrong.token\"\n"
        ),
    )
    .unwrap();
    let o = host_trainer(
        "deploy",
        &[
            bundle2.to_str().unwrap(),
            "--fleet",
            fleet.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "one booth refused: the deploy fails");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{stdout}"))
            .to_owned()
    };
    assert!(
        row("first").contains("101") && row("first").contains("serving"),
        "{stdout}"
    );
    assert!(row("second").contains("token"), "{stdout}");
    assert!(stderr.contains("1 of 2 booths"), "{stderr}");
}
