//! The booth's process against signals, as systemd and an operator send them: SIGTERM ends it
//! within 2 s whatever it is doing (a looping video, a source that never delivers), and a second
//! signal ends it at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::{asset, root, workspace_bin};

/// The booth with its console on a free loopback port (the console thread must not hold up
/// the exit either) and a state folder of its own under `state`.
fn booth(input: &std::path::Path, state: &std::path::Path) -> Child {
    Command::new(workspace_bin("doppel-device"))
        .current_dir(root())
        .args(["run", "--loop", "--display", "headless", "--input"])
        .arg(input)
        .args(["--http", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits for the child's exit up to `within`; its exit code, `None` if still running.
fn exit_within(child: &mut Child, within: Duration) -> Option<i32> {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A folder of frames whose first "image" is a named pipe nobody writes to: reading it blocks
/// like a hung mount or a stalled device, so the source never delivers a frame.
fn stalled_source(dir: &std::path::Path) -> std::path::PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let c = std::ffi::CString::new(frames.join("0001.png").to_str().unwrap()).unwrap();
    // SAFETY: a valid path; creates a named pipe.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    frames
}

#[test]
fn sigterm_ends_a_running_booth_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = booth(&asset("data/carphone_pristine.mp4"), dir.path());
    std::thread::sleep(Duration::from_secs(3));
    assert!(b.try_wait().unwrap().is_none(), "the looping booth runs");
    let t = Instant::now();
    signal(&b, libc::SIGTERM);
    let code = exit_within(&mut b, Duration::from_secs(2));
    assert_eq!(code, Some(0), "ended cleanly in {:?}", t.elapsed());
}

#[test]
fn sigterm_ends_a_booth_whose_source_never_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = booth(&stalled_source(dir.path()), &dir.path().join("state"));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        b.try_wait().unwrap().is_none(),
        "still waiting for its source"
    );
    let t = Instant::now();
    signal(&b, libc::SIGTERM);
    let code = exit_within(&mut b, Duration::from_secs(2));
    assert!(
        code.is_some(),
        "still running {:?} after SIGTERM",
        t.elapsed()
    );
}

#[test]
fn a_second_signal_ends_the_booth_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = booth(&stalled_source(dir.path()), &dir.path().join("state"));
    std::thread::sleep(Duration::from_secs(1));
    signal(&b, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    signal(&b, libc::SIGINT);
    let code = exit_within(&mut b, Duration::from_millis(500));
    assert_eq!(code, Some(130), "after {:?}", t.elapsed());
}
