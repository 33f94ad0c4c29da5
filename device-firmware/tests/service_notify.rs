//! The booth under `Type=notify`: systemd's notification protocol on a datagram socket, as
//! systemd sets it up ($NOTIFY_SOCKET, $WATCHDOG_USEC). The booth says READY=1 once it shows
//! frames, pings WATCHDOG=1 from its frame loop, keeps a STATUS= line and says STOPPING=1 on
//! SIGTERM. (Whether systemd then restarts a silent booth is the image boot test's to show.)

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The booth started as systemd starts a `Type=notify` service with a watchdog of 400 ms,
/// and the socket its notifications arrive on.
fn notified_booth(
    dir: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
) -> (UnixDatagram, common::booth::KillOnDrop) {
    let socket_path = dir.join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // systemd names the watched process in $WATCHDOG_PID: the shell's pid, kept by `exec`.
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$@\"", "sh"])
        .args(common::booth::device_program())
        .current_dir(common::root())
        .arg("run")
        .args(args)
        .args(["--http", "", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--config")
        .arg(config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (socket, common::booth::KillOnDrop(child))
}

#[test]
fn the_booth_reports_ready_pings_the_watchdog_and_says_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::booth::write_config(dir.path(), "");
    let (socket, mut child) = notified_booth(
        dir.path(),
        &config,
        &[
            "--input",
            "data/carphone_pristine.mp4",
            "--loop",
            "--threads",
            "1",
        ],
    );
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(first.contains("READY=1"), "{first}");
    assert!(first.contains("STATUS=swap mode"), "{first}");
    // Pings at half the watchdog interval (200 ms), from the frame loop: about 12 in 2.5 s
    // (fewer under an emulator, where a frame can take longer than 200 ms), never a flood.
    let t = Instant::now();
    let mut pings = 0;
    while t.elapsed() < Duration::from_millis(2500) {
        pings += recv().lines().filter(|l| *l == "WATCHDOG=1").count();
    }
    assert!((4..=15).contains(&pings), "{pings} pings in 2.5 s");
    // SIGTERM: the booth says it is stopping and ends cleanly.
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let mut stopping = false;
    while let Ok(n) = socket.recv(&mut buf) {
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping);
    assert!(child.0.wait().unwrap().success());
}

/// A booth whose settings are wrong, started as the service starts it (`--fault-screen`): it
/// stays up, tells systemd why in its status line, pings the watchdog, and stops on SIGTERM —
/// no restart loop that would hide the reason.
#[test]
fn a_booth_that_cannot_start_stays_up_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("booth.toml");
    std::fs::write(&config, "[pipeline]\nsmooth_cutoff = -1.0\n").unwrap();
    let (socket, mut child) = notified_booth(dir.path(), &config, &["--fault-screen"]);
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.contains("READY=1"), "{first}");
    assert!(
        first.contains("smooth_cutoff"),
        "the reason is in the status: {first}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.0.try_wait().unwrap().is_none(), "still up");
    let n = socket.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1"));
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    assert!(child.0.wait().unwrap().success());
}
