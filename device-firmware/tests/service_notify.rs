//! The booth under `Type=notify`: systemd's notification protocol on a datagram socket, as
//! systemd sets it up ($NOTIFY_SOCKET, $WATCHDOG_USEC). The booth says READY=1 once it shows
//! frames, pings WATCHDOG=1 from its frame loop, keeps a STATUS= line and says STOPPING=1 on
//! SIGTERM. (Whether systemd then restarts a silent booth is the image boot test's to show.)

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_booth_reports_ready_pings_the_watchdog_and_says_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let config = common::booth::write_config(dir.path(), "");
    // systemd names the watched process in $WATCHDOG_PID: the shell's pid, kept by `exec`.
    let mut child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_doppel-device"))
        .current_dir(common::root())
        .args(["run", "--input", "data/carphone_pristine.mp4", "--loop"])
        .args(["--http", "", "--threads", "1", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(first.contains("READY=1"), "{first}");
    assert!(first.contains("STATUS=swap mode"), "{first}");
    // Pings at half the watchdog interval (200 ms): several within 1.5 s.
    let t = Instant::now();
    let mut pings = 0;
    while t.elapsed() < Duration::from_millis(1500) {
        pings += recv().lines().filter(|l| *l == "WATCHDOG=1").count();
    }
    assert!((4..=12).contains(&pings), "{pings} pings in 1.5 s");
    // SIGTERM: the booth says it is stopping and ends cleanly.
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut stopping = false;
    while let Ok(n) = socket.recv(&mut buf) {
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping);
    assert!(child.wait().unwrap().success());
}
