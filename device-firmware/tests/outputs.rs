//! Display outputs rendered through the same code the booth uses, into files and sockets.

mod common;

use device_firmware::config::{DisplayConfig, DisplayKind, Mode};
use device_firmware::display::framebuffer::{unpack_pixel, Framebuffer};
use device_firmware::display::FrameSink;
use device_firmware::overlay::{self, Hud};
use device_firmware::pipeline::BoothCues;
use facekit::forensics::Cues;
use facekit::Detection;
use image::RgbImage;

fn fb_config(path: &std::path::Path, w: u32, h: u32, stride: u32, bits: u32) -> DisplayConfig {
    DisplayConfig {
        kind: DisplayKind::Framebuffer,
        framebuffer: path.to_path_buf(),
        fb_width: w,
        fb_height: h,
        fb_stride: stride,
        fb_bits: bits,
        ..Default::default()
    }
}

#[test]
fn framebuffer_files_hold_the_frame_in_rgb565_and_xrgb8888_with_padded_strides() {
    let frame = common::frames("data/carphone_pristine.mp4", 1).remove(0);
    let (w, h) = frame.dimensions();
    let dir = tempfile::tempdir().unwrap();
    for (bits, stride, tolerance) in [(16, 2 * w + 64, 8), (32, 0, 0)] {
        let path = dir.path().join(format!("fb{bits}"));
        let mut fb = Framebuffer::open(&fb_config(&path, w, h, stride, bits)).unwrap();
        fb.show(&frame).unwrap();
        let mem = std::fs::read(&path).unwrap();
        let g = fb.geometry;
        assert_eq!(mem.len(), g.bytes());
        assert_eq!(g.stride, if stride == 0 { 4 * w } else { stride });
        let mut worst = 0;
        for y in 0..h {
            for x in 0..w {
                let got = unpack_pixel(&mem, &g, x, y);
                let want = frame.get_pixel(x, y).0;
                for c in 0..3 {
                    worst = worst.max(got[c].abs_diff(want[c]));
                }
            }
        }
        assert!(
            worst <= tolerance,
            "{bits} bpp: worst channel error {worst}"
        );
        // Padding bytes at the end of each RGB565 line stay zero.
        if bits == 16 {
            assert!(mem[(2 * w) as usize..stride as usize]
                .iter()
                .all(|&b| b == 0));
        }
    }
    // A wider screen letterboxes: black bars left and right, the frame centred.
    let path = dir.path().join("wide");
    let mut fb = Framebuffer::open(&fb_config(&path, 2 * w, h, 0, 32)).unwrap();
    fb.show(&frame).unwrap();
    let mem = std::fs::read(&path).unwrap();
    assert_eq!(unpack_pixel(&mem, &fb.geometry, 2, h / 2), [0, 0, 0]);
    let centre = unpack_pixel(&mem, &fb.geometry, w, h / 2);
    assert_ne!(centre, [0, 0, 0]);
    // A framebuffer file without geometry is refused with the fix.
    let err = Framebuffer::open(&fb_config(&dir.path().join("x"), 0, 0, 0, 32))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("fb_width"), "{err}");
}

/// Renders the detect-mode overlay on a fixed frame. The golden file is regenerated with
/// `DOPPEL_UPDATE_GOLDEN=1`; otherwise at most 0.5% of pixels may differ by more than 2.
#[test]
fn overlay_layout_matches_the_golden_image() {
    let mut frame = RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x * 255 / 320) as u8, (y * 255 / 240) as u8, 128])
    });
    let hud = Hud {
        mode: Some(Mode::SwapDetect),
        fps: 24.5,
        latency_ms: 41.0,
        model: "lite 584st 25884ed4".into(),
        score: Some((0.83, 0.5)),
        cues: Some(BoothCues {
            cues: Cues {
                over_blur: 1.4,
                edge_colour: 0.9,
                double_edges: 1.1,
                mouth_blur: 1.0,
                ..Cues::default()
            },
            flicker: Some(2.3),
        }),
        face: Some(Detection {
            bbox: [110.0, 60.0, 210.0, 180.0],
            score: 0.99,
            landmarks: [
                [140.0, 105.0],
                [180.0, 105.0],
                [160.0, 130.0],
                [145.0, 155.0],
                [175.0, 155.0],
            ],
        }),
        warning: None,
        synthetic: true,
    };
    overlay::draw(&mut frame, &hud);
    let golden = common::root().join("device-firmware/tests/golden/overlay_swap_detect.png");
    if std::env::var_os("DOPPEL_UPDATE_GOLDEN").is_some() {
        frame.save(&golden).unwrap();
    }
    let want = image::open(&golden)
        .expect("golden image (DOPPEL_UPDATE_GOLDEN=1 to create)")
        .to_rgb8();
    assert_eq!(want.dimensions(), frame.dimensions());
    let off = frame
        .pixels()
        .zip(want.pixels())
        .filter(|(a, b)| (0..3).any(|c| a.0[c].abs_diff(b.0[c]) > 2))
        .count();
    assert!(
        off * 200 <= (320 * 240),
        "{off} pixels differ from the golden overlay"
    );
    // The face box carries the verdict: red around a face called fake, green around a real one.
    let box_pixel = |score: f32| {
        let mut plain = RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]));
        overlay::draw(
            &mut plain,
            &Hud {
                score: Some((score, 0.5)),
                ..hud.clone()
            },
        );
        // The box's left edge, half-way down: clear of the landmarks and the labels.
        plain.get_pixel(110, 120).0
    };
    let (fake, real) = (box_pixel(0.83), box_pixel(0.2));
    assert!(fake[0] > 200 && fake[1] < 60, "{fake:?}");
    assert!(real[1] > 150 && real[0] < 60, "{real:?}");

    // Swap mode: a swapped face has no box; with no swap model ("showing faces only") a
    // white box shows the booth found the visitor.
    let swap_box = |synthetic: bool| {
        let mut plain = RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]));
        let swap = Hud {
            mode: Some(Mode::Swap),
            score: None,
            cues: None,
            synthetic,
            ..hud.clone()
        };
        overlay::draw(&mut plain, &swap);
        plain.get_pixel(110, 120).0
    };
    assert_eq!(swap_box(true), [128; 3], "swapped: no box");
    assert!(
        swap_box(false).iter().all(|&c| c > 200),
        "faces only: white box"
    );
}
