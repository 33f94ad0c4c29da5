//! Camera buffers as a V4L2 driver hands them over, recorded from the sample media with ffmpeg:
//! an MJPEG frame straight out of movie.avi (an MJPEG stream) and a YUYV 4:2:2 frame.

mod common;

use std::process::Command;

use device_firmware::config::CameraFormat;
use device_firmware::source::formats::{decode, negotiate, PixelFormat};

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffmpeg (make setup)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The first frame of the sample `video`, through ffmpeg with `out` (codec and format) to stdout.
fn first_frame(video: &str, out: &[&str]) -> Vec<u8> {
    let path = common::root().join(video);
    let input = ["-i", path.to_str().unwrap(), "-frames:v", "1"];
    ffmpeg(&[&input[..], out, &["-"]].concat())
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y) as f64)
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn recorded_mjpeg_and_yuyv_buffers_decode_to_the_reference_pixels() {
    // The compressed frame exactly as the camera would send it (no re-encode).
    let jpeg = first_frame("data/movie.avi", &["-c:v", "copy", "-f", "mjpeg"]);
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG buffer");
    let rgb24 = ["-f", "rawvideo", "-pix_fmt", "rgb24"];
    let reference = first_frame("data/movie.avi", &rgb24);
    let offered = [*b"YUYV", *b"MJPG"];
    let format = negotiate(&offered, CameraFormat::Auto).unwrap();
    assert_eq!(format, PixelFormat::Mjpeg);
    let rgb = decode(format, 160, 120, &jpeg).unwrap();
    assert_eq!(rgb.dimensions(), (160, 120));
    let d = mean_abs_diff(rgb.as_raw(), &reference);
    assert!(d < 3.0, "MJPEG decode vs ffmpeg: mean |diff| {d:.2}");

    let carphone = "data/carphone_pristine.mp4";
    let yuyv = first_frame(carphone, &["-f", "rawvideo", "-pix_fmt", "yuyv422"]);
    assert_eq!(yuyv.len(), 176 * 144 * 2);
    let reference = first_frame(carphone, &rgb24);
    let format = negotiate(&[*b"YUYV"], CameraFormat::Auto).unwrap();
    let rgb = decode(format, 176, 144, &yuyv).unwrap();
    let d = mean_abs_diff(rgb.as_raw(), &reference);
    assert!(d < 4.0, "YUYV decode vs ffmpeg: mean |diff| {d:.2}");
    // A truncated capture is an error, not a garbage frame.
    assert!(decode(PixelFormat::Yuyv, 176, 144, &yuyv[..1000]).is_err());
    assert!(decode(PixelFormat::Mjpeg, 160, 120, &jpeg[..200]).is_err());
}

/// A JPEG frame ffmpeg codes with the standard (Annex K) Huffman tables, and the same frame as
/// RGB.
fn standard_jpeg() -> (Vec<u8>, Vec<u8>) {
    let standard = [
        "-c:v", "mjpeg", "-huffman", "default", "-q:v", "3", "-f", "mjpeg",
    ];
    let jpeg = first_frame("data/movie.avi", &standard);
    let rgb = image::load_from_memory(&jpeg).unwrap().to_rgb8().into_raw();
    (jpeg, rgb)
}

/// The frame's segments, as (marker, whole segment bytes), up to the scan.
fn segments(jpeg: &[u8]) -> Vec<(u8, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 2;
    while jpeg[at + 1] != 0xda {
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        out.push((jpeg[at + 1], at..at + 2 + len));
        at += 2 + len;
    }
    out
}

#[test]
fn mjpeg_frames_without_huffman_tables_decode_with_the_standard_ones() {
    let (jpeg, reference) = standard_jpeg();
    let dht: Vec<_> = segments(&jpeg)
        .into_iter()
        .filter(|s| s.0 == 0xc4)
        .collect();
    assert!(!dht.is_empty(), "ffmpeg wrote its tables");
    // Our table bytes are exactly the ones ffmpeg writes for `-huffman default`.
    let theirs: Vec<u8> = dht
        .iter()
        .flat_map(|(_, r)| jpeg[r.start + 4..r.end].to_vec())
        .collect();
    let bare = strip(&jpeg);
    let inserted = device_firmware::source::formats::with_standard_huffman_tables(&bare);
    let ours = segments(&inserted)
        .into_iter()
        .filter(|s| s.0 == 0xc4)
        .flat_map(|(_, r)| inserted[r.start + 4..r.end].to_vec())
        .collect::<Vec<u8>>();
    assert_eq!(ours, theirs);

    // A camera frame that carries no tables (and no AVI1 marker) decodes to the same pixels.
    assert!(image::load_from_memory(&bare).is_err(), "needs the tables");
    let frame = decode(PixelFormat::Mjpeg, 160, 120, &bare).unwrap();
    assert_eq!(frame.into_raw(), reference);
}

/// `jpeg` without its DHT segments.
fn strip(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    for (_, r) in segments(jpeg).into_iter().filter(|s| s.0 == 0xc4).rev() {
        out.drain(r);
    }
    out
}

#[test]
fn one_damaged_frame_is_skipped_and_only_a_run_of_them_loses_the_camera() {
    use device_firmware::source::formats::{FrameDecoder, MAX_BAD_IN_A_ROW};
    let (jpeg, _) = standard_jpeg();
    let mut cut = jpeg.clone();
    cut.truncate(jpeg.len() / 2);
    let mut d = FrameDecoder::new(PixelFormat::Mjpeg, 160, 120, 0);
    assert!(d.frame(&jpeg).unwrap().is_some());
    assert!(
        d.frame(&cut).unwrap().is_none(),
        "a damaged frame is skipped"
    );
    assert!(d.frame(&jpeg).unwrap().is_some());
    for _ in 1..MAX_BAD_IN_A_ROW {
        assert!(d.frame(&cut).unwrap().is_none());
    }
    assert!(
        d.frame(&cut).is_err(),
        "a run of bad frames is a lost camera"
    );
}

#[test]
fn yuyv_with_padded_lines_decodes_and_an_odd_width_is_an_error_not_a_panic() {
    use device_firmware::source::formats::yuyv_lines_to_rgb;
    let (w, h) = (6u32, 3u32);
    let packed: Vec<u8> = (0..w * h * 2).map(|i| (i * 7 % 251) as u8).collect();
    let mut padded = Vec::new();
    for row in packed.chunks(w as usize * 2) {
        padded.extend_from_slice(row);
        padded.extend_from_slice(&[0xee; 4]); // the driver's padding
    }
    let a = yuyv_lines_to_rgb(w, h, 0, &packed).unwrap();
    let b = yuyv_lines_to_rgb(w, h, w * 2 + 4, &padded).unwrap();
    assert_eq!(a, b);
    assert!(yuyv_lines_to_rgb(5, 3, 0, &packed).is_err());
    assert!(yuyv_lines_to_rgb(w, h, 4, &packed).is_err());
    assert!(decode(PixelFormat::Yuyv, 7, 7, &[0; 98]).is_err());
}
