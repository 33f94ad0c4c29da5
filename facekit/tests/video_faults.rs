//! Videos that are broken or unusual in ways real files are: a stream of decode errors, a phone
//! video stored sideways. Made with the real ffmpeg, read with the real ffmpeg.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use facekit::{FrameSource, VideoReader};

fn ffmpeg(args: &[&str]) {
    let ok = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg runs (make setup)")
        .success();
    assert!(ok, "ffmpeg {args:?}");
}

/// `frames` frames of ffmpeg's 64×48 test pattern, coded with `codec`, into `out`.
fn testsrc(frames: &str, codec: &[&str], out: &Path) {
    let src = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=25",
        "-frames:v",
        frames,
    ];
    ffmpeg(&[&src[..], codec, &[out.to_str().unwrap()]].concat());
}

/// An MJPEG AVI whose every frame has damaged entropy-coded data: ffmpeg conceals the damage and
/// keeps decoding, writing an error line or two per frame (~180 KB for 3000 frames, far more
/// than a pipe holds).
fn error_flood(dir: &Path) -> std::path::PathBuf {
    let clean = dir.join("clean.avi");
    testsrc("3000", &["-c:v", "mjpeg", "-q:v", "5"], &clean);
    let mut data = std::fs::read(&clean).unwrap();
    let mut i = 0;
    while let Some(at) = data[i..].windows(2).position(|w| w == [0xff, 0xda]) {
        let sos = i + at;
        for k in (20..60).step_by(3) {
            if let Some(b) = data.get_mut(sos + k) {
                if *b != 0xff {
                    *b = (*b ^ 0x5a) & 0xfe;
                }
            }
        }
        i = sos + 2;
    }
    let flood = dir.join("flood.avi");
    std::fs::write(&flood, data).unwrap();
    flood
}

#[test]
fn a_flood_of_decode_errors_does_not_stall_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let video = error_flood(dir.path());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = VideoReader::open(&video).unwrap();
        let mut n = 0;
        while let Ok(Some(_)) = reader.next_frame() {
            n += 1;
        }
        let _ = tx.send(n);
    });
    // Decoding 3000 tiny frames takes a second or two; a stalled pipe never ends.
    let frames = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("decoding stalled: ffmpeg's stderr was not drained");
    assert_eq!(frames, 3000);
}

#[test]
fn a_sideways_phone_video_is_read_upright_at_its_display_size() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, rotated) = (dir.path().join("plain.mp4"), dir.path().join("rot.mp4"));
    let lossless = ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0"];
    testsrc("5", &lossless, &plain);
    // What a phone writes: the coded frames as they are, plus a 90° display matrix.
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    let mut upright = VideoReader::open(&plain).unwrap();
    let mut turned = VideoReader::open(&rotated).unwrap();
    assert_eq!(turned.size(), (48, 64));
    let (a, b) = (
        upright.next_frame().unwrap().unwrap(),
        turned.next_frame().unwrap().unwrap(),
    );
    assert_eq!(b.dimensions(), (48, 64));
    // Turned by the display matrix (a quarter turn counter-clockwise, as ffmpeg applies this
    // tag): the coded frame's top-right pixel is now at the top left.
    let diff = |p: [u8; 3], q: [u8; 3]| {
        p.iter()
            .zip(q)
            .map(|(x, y)| x.abs_diff(y) as u32)
            .sum::<u32>()
    };
    let mut worst = 0;
    for y in 0..48 {
        for x in 0..64 {
            let d = diff(a.get_pixel(x, y).0, b.get_pixel(y, 63 - x).0);
            worst = worst.max(d);
        }
    }
    assert!(
        worst <= 12,
        "the turned frame is the coded one rotated, worst pixel {worst}"
    );
    let mut n = 1;
    while turned.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 5);
}
