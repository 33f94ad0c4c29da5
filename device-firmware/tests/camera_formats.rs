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
    let movie = common::root().join("data/movie.avi");
    let movie = movie.to_str().unwrap();
    // The compressed frame exactly as the camera would send it (no re-encode).
    let jpeg = ffmpeg(&[
        "-i",
        movie,
        "-frames:v",
        "1",
        "-c:v",
        "copy",
        "-f",
        "mjpeg",
        "-",
    ]);
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG buffer");
    let reference = ffmpeg(&[
        "-i",
        movie,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let offered = [*b"YUYV", *b"MJPG"];
    let format = negotiate(&offered, CameraFormat::Auto).unwrap();
    assert_eq!(format, PixelFormat::Mjpeg);
    let rgb = decode(format, 160, 120, &jpeg).unwrap();
    assert_eq!(rgb.dimensions(), (160, 120));
    let d = mean_abs_diff(rgb.as_raw(), &reference);
    assert!(d < 3.0, "MJPEG decode vs ffmpeg: mean |diff| {d:.2}");

    let carphone = common::root().join("data/carphone_pristine.mp4");
    let carphone = carphone.to_str().unwrap();
    let yuyv = ffmpeg(&[
        "-i",
        carphone,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuyv422",
        "-",
    ]);
    assert_eq!(yuyv.len(), 176 * 144 * 2);
    let reference = ffmpeg(&[
        "-i",
        carphone,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let format = negotiate(&[*b"YUYV"], CameraFormat::Auto).unwrap();
    let rgb = decode(format, 176, 144, &yuyv).unwrap();
    let d = mean_abs_diff(rgb.as_raw(), &reference);
    assert!(d < 4.0, "YUYV decode vs ffmpeg: mean |diff| {d:.2}");
    // A truncated capture is an error, not a garbage frame.
    assert!(decode(PixelFormat::Yuyv, 176, 144, &yuyv[..1000]).is_err());
    assert!(decode(PixelFormat::Mjpeg, 160, 120, &jpeg[..200]).is_err());
}
