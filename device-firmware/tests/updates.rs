//! Model updates end to end: the real booth on 127.0.0.1 with the sample video looping, bundles
//! uploaded through its API as `host-trainer deploy` sends them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::booth::{trial_wait, write_config, Booth};

fn bundle(dir: &Path, name: &str, serial: i64) -> std::path::PathBuf {
    let b = dir.join(name);
    common::write_bundle(&b, serial, true);
    b
}

fn swapping(s: &serde_json::Value) -> bool {
    s["live"]["swapped"].as_u64().unwrap_or(0) > 0
}

#[test]
fn deploys_are_verified_refused_when_stale_or_tampered_and_rolled_back_when_bad() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = write_config(dir.path(), "");
    let booth = Booth::start(&state, &config, &[]).unwrap();

    // A first start: no bundle, faces only, the token made.
    let s = booth.status();
    assert!(s["serving"]["current"].is_null(), "{s}");
    assert!(s["bundle"].is_null());

    // Nothing changes without the token.
    let v2 = bundle(dir.path(), "v2", 2);
    for (path, body) in [
        ("/api/rollback", &b"{}"[..]),
        ("/api/mode", br#"{"mode":"detect"}"#),
        ("/api/bundles", b"not a bundle"),
        ("/api/bundles/2/activate", b"{}"),
        (
            "/api/calibrate",
            br#"{"seconds":1,"false_alarm_rate":0.05}"#,
        ),
    ] {
        let (code, _) = booth.post(path, body, None);
        assert_eq!(code, 401, "{path} without a token");
        let (code, _) = booth.post(path, body, Some("0123456789abcdef"));
        assert_eq!(code, 401, "{path} with a wrong token");
        // Its body may be left unread, so the booth closes the connection and says so: a
        // client reusing it would see its next request fail (CI's aarch64 run, twice).
        let r = common::booth::agent()
            .post(&format!("{}{path}", booth.url))
            .send(body)
            .unwrap();
        assert_eq!(r.headers()["connection"], "close", "{path}");
    }
    let r = common::booth::agent()
        .get(&format!("{}/api/status", booth.url))
        .call()
        .unwrap();
    assert!(
        r.headers().get("connection").is_none(),
        "a refused GET keeps its connection"
    );
    assert_eq!(booth.get("/api/status", None).0, 401);

    // v2 goes into service after its trial and swaps.
    assert_eq!(booth.deploy(&v2), 2);
    let s = booth.wait_for("v2 swaps", Duration::from_secs(30), swapping);
    assert_eq!(s["bundle"]["serial"], 2);

    // A tampered bundle (a model changed after signing) is refused; v2 keeps serving.
    let v3 = bundle(dir.path(), "v3", 3);
    let model = v3.join("models/swap.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&model, bytes).unwrap();
    let (code, body) = booth.upload(&v3);
    assert_eq!(code, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("sha256"), "{body}");

    // An archive that is not one, and one bigger than the limit's header says, are refused.
    let (code, _) = booth.post("/api/bundles", b"garbage", Some(&booth.token));
    assert_eq!(code, 422);

    // An older serial is refused: a withdrawn bundle cannot be replayed.
    let v1 = bundle(dir.path(), "v1", 1);
    let (code, body) = booth.upload(&v1);
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not newer"),
        "{body}"
    );
    assert_eq!(booth.status()["serving"]["current"], 2);

    // A bundle whose swap model yields NaN is rolled back automatically at activation.
    let v4 = dir.path().join("v4");
    common::write_bundle(&v4, 4, false);
    common::reseal_with_swap(
        &v4,
        &common::nan_swap(shared_proto::FaceCropSpec::default().size as i64),
    );
    let (code, body) = booth.upload(&v4);
    assert_eq!(code, 201, "{body}");
    let (code, body) = booth.activate(4);
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("self-test"),
        "{body}"
    );
    let s = booth.status();
    assert_eq!(s["serving"]["current"], 2, "{s}");
    assert!(s["serving"]["failed"]
        .as_array()
        .unwrap()
        .contains(&4.into()));
    // An operator's retry runs the self-test again, with the same verdict.
    assert_eq!(booth.activate(4).0, 422);
    assert_eq!(booth.status()["serving"]["current"], 2);

    // The operator rolls back from v5 to v2, then re-activates the kept v5.
    let v5 = bundle(dir.path(), "v5", 5);
    assert_eq!(booth.deploy(&v5), 5);
    let (code, body) = booth.post("/api/rollback", b"{}", Some(&booth.token));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["serving"], 2);
    booth.wait_for("v2 confirmed again", trial_wait(), |s| {
        s["serving"]["current"] == 2 && s["serving"]["trial"].is_null()
    });
    let (code, body) = booth.activate(5);
    assert_eq!(code, 202, "{body}");
    booth.wait_for("v5 again", trial_wait(), |s| {
        s["serving"]["current"] == 5 && s["serving"]["trial"].is_null()
    });
    // The console's kept list names them, newest first.
    let kept: Vec<u64> = booth.status()["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(kept[0], 5, "{kept:?}");
    assert!(kept.contains(&2));

    // The mode is switched from the console.
    let (code, _) = booth.post("/api/mode", br#"{"mode":"detect"}"#, Some(&booth.token));
    assert_eq!(code, 200);
    // As long as the other waits here: under qemu, with the other tests' booths beside it, a
    // detect-mode frame (search, align, detector) took over 10 s once.
    booth.wait_for("detect mode", Duration::from_secs(30), |s| {
        s["live"]["mode"] == "detect" && s["live"]["last_score"].is_number()
    });
}

/// SIGKILL at each step of an update, then a restart: the booth always serves a complete,
/// verified bundle, and the state folder holds no half-received one.
#[test]
fn a_kill_at_any_update_step_leaves_a_complete_bundle_in_service() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = bundle(dir.path(), "v2", 2);
    let v3 = bundle(dir.path(), "v3", 3);
    let config = write_config(dir.path(), "");
    for (step, serving_after) in [
        ("update-received", 2),
        ("update-verified", 2),
        ("update-kept", 2),
        // Killed during its trial: the previous bundle serves, the new one is not trusted again.
        ("update-switched", 2),
        ("update-confirmed", 3),
    ] {
        let state = dir.path().join(step);
        {
            let booth = Booth::start(&state, &config, &[]).unwrap();
            booth.deploy(&v2);
        }
        let mut booth = Booth::start(
            &state,
            &config,
            &[("FAILPOINTS", &format!("{step}=return"))],
        )
        .unwrap();
        // The failpoint may kill the booth mid-request: no answer is an answer here.
        if let Some((201, _)) = booth.try_upload(&v3) {
            // The confirm step runs on the booth loop after the trial's frames.
            let _ = booth.try_activate(3);
        }
        let signal = booth.wait_exit(trial_wait());
        assert_eq!(signal, Some(9), "{step}: killed by the failpoint");
        drop(booth);

        let booth = Booth::start(&state, &config, &[]).unwrap();
        let s = booth.wait_for(
            &format!("{step}: serving after restart"),
            Duration::from_secs(30),
            swapping,
        );
        assert_eq!(s["serving"]["current"], serving_after, "{step}: {s:#}");
        assert_eq!(s["bundle"]["serial"], serving_after, "{step}");
        assert!(s["serving"]["trial"].is_null(), "{step}");
        let staging = state.join("staging");
        let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{step}: staging emptied at start");
        // The update can be made again where the bundle was never accepted.
        if serving_after == 2 && step != "update-switched" {
            assert_eq!(booth.deploy(&v3), 3, "{step}: deploying again");
        }
    }
}

/// `doppel-device token` (the image's first boot makes the token with it, the operator reads it
/// with it): it makes the token when missing (0600), prints the same one again, and the booth
/// started on that state folder takes it rather than making another.
#[test]
fn the_token_command_makes_and_prints_the_token_the_booth_uses() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let token = || {
        let program = common::booth::device_program();
        let out = std::process::Command::new(&program[0])
            .args(&program[1..])
            .arg("token")
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let first = token();
    assert_eq!(first.len(), 64, "{first}");
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert_eq!(token(), first);
    let mode = std::fs::metadata(state.join("operator.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let booth = Booth::start(&state, &write_config(dir.path(), ""), &[]).unwrap();
    assert_eq!(booth.token, first);
    let (code, _) = booth.get("/api/status", Some(&first));
    assert_eq!(code, 200);
}
