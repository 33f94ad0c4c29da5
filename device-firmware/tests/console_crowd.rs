//! A crowd at the console: 200 clients that open the live view and never read, 100 that
//! connect and send nothing, and one that reads slowly. The booth keeps its frame rate (within 10% of no clients), the connections stay
//! capped, no thread is started, and the operator still gets through. The sample video is
//! paced at 30 fps, as a camera delivers frames: the booth must keep that rate with the crowd
//! at its door. Alone in its test binary so nothing else competes for the CPU.
// x86 only: it compares frame rates, which under an emulator measure the emulator.
#![cfg(not(target_arch = "aarch64"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::booth::{write_config, Booth};

/// Frames per second the booth processed over `window` (its own frame counter).
fn fps(booth: &Booth, window: Duration) -> f64 {
    let frames = |b: &Booth| {
        // The cap may turn a request away while the crowd arrives: retry.
        // (Silent clients hold the connections until the header timeout, 5 s here.)
        for _ in 0..150 {
            if let Some(s) = b.try_status() {
                return s["live"]["frames"].as_f64().unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the operator cannot reach the console");
    };
    let (f0, t0) = (frames(booth), Instant::now());
    std::thread::sleep(window);
    (frames(booth) - f0) / t0.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn open_stream(addr: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"GET /stream.mjpg HTTP/1.1\r\nHost: booth\r\n\r\n")?;
    Ok(s)
}

#[test]
fn idle_and_slow_live_view_clients_neither_slow_the_booth_nor_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "max_connections = 64\nmax_stream_clients = 8\nheader_timeout_s = 5\n\
         [source]\npace = true\nfps = 30",
    );
    let booth = Booth::start(&dir.path().join("state"), &config, &[]).unwrap();
    let v2 = dir.path().join("v2");
    common::write_bundle(&v2, 2, true);
    booth.deploy(&v2);
    let addr = booth.url.trim_start_matches("http://").to_owned();

    let threads = booth.threads();
    // Quiet and crowded windows alternate, so a drift in the machine's speed hits both.
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    let mut slow_reads = Vec::new();
    for _ in 0..3 {
        quiet.push(fps(&booth, Duration::from_secs(3)));
        // The slow reader: 2 KB every 100 ms, far below the stream's rate.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slow = {
            let mut s = open_stream(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 2048];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                seen
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        // 200 that ask for the live view and never read a byte, then 100 that connect and send
        // nothing (held until the header timeout): more than the cap at once.
        let mut crowd: Vec<TcpStream> = (0..200).filter_map(|_| open_stream(&addr).ok()).collect();
        crowd.extend((0..100).filter_map(|_| TcpStream::connect(&addr).ok()));
        assert!(crowd.len() > 250, "{} of 300 connected", crowd.len());
        std::thread::sleep(Duration::from_millis(500));
        busy.push(fps(&booth, Duration::from_secs(3)));
        let s = booth.status();
        let console = &s["console"];
        assert!(console["connections"].as_u64().unwrap() <= 64, "{console}");
        assert!(
            console["stream_clients"].as_u64().unwrap() <= 8,
            "{console}"
        );
        assert!(
            console["refused_connections"].as_u64().unwrap() > 0,
            "over the cap, connections are closed: {console}"
        );
        // (The two-thread pool for uploads may have shrunk since the deploy; it never grows.)
        assert!(booth.threads() <= threads, "no thread per client");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        slow_reads.push(slow.join().unwrap());
        drop(crowd);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (quiet, busy) = (median(quiet), median(busy));
    eprintln!(
        "fps quiet {quiet:.1}, with the crowd {busy:.1}; console {}",
        booth.status()["console"]
    );
    assert!(
        busy >= 0.9 * quiet,
        "fps {busy:.1} with the crowd, {quiet:.1} without"
    );
    for seen in slow_reads {
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "{}",
            &text[..text.len().min(200)]
        );
        assert!(
            text.matches("--doppelframe").count() >= 2,
            "the slow reader gets frames"
        );
    }
    // Once the crowd leaves, the live view is free again.
    std::thread::sleep(Duration::from_secs(1));
    let mut s = open_stream(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
}
