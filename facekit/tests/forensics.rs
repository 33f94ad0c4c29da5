//! The forensic cues and the SBI generator on a real aligned face from the sample video.

use facekit::blend::{erode_dilate, BlendOptions};
use facekit::forensics::{cues, face_mask, flicker, graphic_swap, self_blend, SbiParams};
use facekit::{align_face, FaceDetectorConfig, FrameSource, RetinaFace, VideoReader};
use image::{imageops, Rgb, RgbImage};
use rand::SeedableRng;
use shared_proto::FaceCropSpec;
use std::sync::OnceLock;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Two consecutive aligned 128 px crops (margin 0.25: the face boundary is inside) and the
/// landmarks of the second in crop pixels. Decoded once for all tests: under qemu-aarch64 a
/// detector load costs seconds, and every ffmpeg started from a many-threaded emulated process
/// is a fork the emulator can deadlock in.
fn crops() -> (RgbImage, RgbImage, [[f32; 2]; 5]) {
    static CROPS: OnceLock<(RgbImage, RgbImage, [[f32; 2]; 5])> = OnceLock::new();
    CROPS.get_or_init(decode_crops).clone()
}

fn decode_crops() -> (RgbImage, RgbImage, [[f32; 2]; 5]) {
    let det = RetinaFace::load(
        root().join(facekit::RETINAFACE_MODEL),
        FaceDetectorConfig::default(),
    )
    .unwrap();
    let mut video = VideoReader::open(root().join("data/carphone_pristine.mp4")).unwrap();
    let spec = FaceCropSpec::new(128, 0.25);
    let mut out = Vec::new();
    for _ in 0..2 {
        let frame = video.next_frame().unwrap().unwrap();
        let face = det.detect(&frame).unwrap().remove(0);
        out.push(align_face(&frame, &face.landmarks, &spec).unwrap());
    }
    let b = out.pop().unwrap();
    let a = out.pop().unwrap();
    (a.image, b.image, b.landmarks)
}

/// `crop` with `f` applied to the pixels inside the face mask only.
fn inside_face(crop: &RgbImage, lm: &[[f32; 2]; 5], f: impl Fn(&RgbImage) -> RgbImage) -> RgbImage {
    let mask = face_mask(crop.width(), lm);
    let changed = f(crop);
    RgbImage::from_fn(crop.width(), crop.height(), |x, y| {
        if mask.get_pixel(x, y).0[0] > 127 {
            *changed.get_pixel(x, y)
        } else {
            *crop.get_pixel(x, y)
        }
    })
}

#[test]
fn each_cue_moves_the_right_way() {
    let (_, crop, lm) = crops();
    let base = cues(&crop, &lm);
    eprintln!("untouched: {base:?}");

    let blurred = inside_face(&crop, &lm, |c| imageops::blur(c, 2.0));
    let c = cues(&blurred, &lm);
    assert!(
        c.over_blur > 2.0 * base.over_blur,
        "over-blur {base:?} -> {c:?}"
    );

    let tinted = inside_face(&crop, &lm, |c| {
        RgbImage::from_fn(c.width(), c.height(), |x, y| {
            let [r, g, b] = c.get_pixel(x, y).0;
            Rgb([r.saturating_add(35), g, b.saturating_sub(25)])
        })
    });
    let c = cues(&tinted, &lm);
    assert!(
        c.edge_colour > 1.5 * base.edge_colour,
        "edge colour {base:?} -> {c:?}"
    );

    // A copy shifted by a few pixels pasted with a hard edge: a seam along the boundary.
    let seamed = inside_face(&crop, &lm, |c| {
        let mut shifted = RgbImage::new(c.width(), c.height());
        imageops::overlay(&mut shifted, c, 4, 3);
        shifted
    });
    let c = cues(&seamed, &lm);
    assert!(
        c.double_edges > 1.1 * base.double_edges,
        "double edges {base:?} -> {c:?}"
    );

    let (ml, mr) = (lm[3], lm[4]);
    let (x0, y0) = (ml[0] as i64 - 6, ml[1].min(mr[1]) as i64 - 6);
    let (mw, mh) = ((mr[0] - ml[0]) as u32 + 12, 14);
    let mouth = imageops::crop_imm(&crop, x0 as u32, y0 as u32, mw, mh).to_image();
    let mut smeared = crop.clone();
    imageops::replace(&mut smeared, &imageops::blur(&mouth, 2.5), x0, y0);
    let c = cues(&smeared, &lm);
    assert!(
        c.mouth_blur > 1.5 * base.mouth_blur,
        "mouth blur {base:?} -> {c:?}"
    );
}

#[test]
fn flicker_rises_when_only_the_face_changes() {
    let (prev, cur, lm) = crops();
    let calm = flicker(&prev, &cur, &lm);
    let noisy = inside_face(&cur, &lm, |c| {
        RgbImage::from_fn(c.width(), c.height(), |x, y| {
            let n = ((x * 7 + y * 13) % 17) as u8 * 2;
            let [r, g, b] = c.get_pixel(x, y).0;
            Rgb([
                r.saturating_add(n),
                g.saturating_add(n),
                b.saturating_add(n),
            ])
        })
    });
    let jittery = flicker(&prev, &noisy, &lm);
    assert!(jittery > calm + 0.5, "flicker {calm:.2} -> {jittery:.2}");
}

#[test]
fn self_blended_images_change_the_face_under_a_soft_mask_only() {
    let (_, crop, lm) = crops();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    for _ in 0..8 {
        let p = SbiParams::sample(&mut rng);
        let (fake, mask) = self_blend(&crop, &lm, &p);
        let (w, h) = crop.dimensions();
        // The face centre is blended at full strength, the corners are untouched.
        let (cx, cy) = ((lm[0][0] + lm[4][0]) / 2.0, (lm[0][1] + lm[4][1]) / 2.0);
        let centre = mask.get_pixel(cx as u32, cy as u32).0[0];
        assert!(centre as f32 >= 250.0 * p.strength - 2.0, "{centre} {p:?}");
        for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
            assert_eq!(mask.get_pixel(x, y).0[0], 0);
            assert_eq!(fake.get_pixel(x, y), crop.get_pixel(x, y));
        }
        // The boundary is soft: a band of partial values, as wide as the feather.
        let partial = mask
            .pixels()
            .filter(|m| (16..240).contains(&m.0[0]))
            .count();
        assert!(
            partial > 100,
            "soft boundary: {partial} partial pixels ({p:?})"
        );
        // Wherever the mask is zero the image is the original.
        for ((f, c), m) in fake.pixels().zip(crop.pixels()).zip(mask.pixels()) {
            if m.0[0] == 0 {
                assert_eq!(f, c);
            }
        }
        // And the face did change.
        let diff: u64 = fake
            .pixels()
            .zip(crop.pixels())
            .map(|(a, b)| (0..3).map(|c| a.0[c].abs_diff(b.0[c]) as u64).sum::<u64>())
            .sum();
        assert!(diff > 1000, "{p:?}");
    }
}

#[test]
fn a_graphics_swap_warps_the_donor_onto_the_target_and_leaves_the_rest_alone() {
    let (_, target, lm) = crops();
    // The donor: the same face moved by (7, -5) pixels and tinted, with its landmarks moved
    // alike. Warped back and colour-matched it must land on the target's own face.
    let (dx, dy) = (7i64, -5i64);
    let mut donor = RgbImage::new(target.width(), target.height());
    imageops::overlay(&mut donor, &target, dx, dy);
    for p in donor.pixels_mut() {
        p.0 = [p.0[0].saturating_add(40), p.0[1], p.0[2].saturating_sub(30)];
    }
    let donor_lm = lm.map(|[x, y]| [x + dx as f32, y + dy as f32]);
    // As the detector's training pastes graphics swaps: without the booth's sharpening (the
    // donor's sharpness is drawn there), so the pasted face can be compared with the target's.
    let blend = BlendOptions {
        sharpen: 0.0,
        ..Default::default()
    };
    let fake = graphic_swap(&target, &lm, &donor, &donor_lm, &blend).unwrap();

    let mask = face_mask(target.width(), &lm);
    let inner = erode_dilate(&mask, 6);
    let reach = erode_dilate(&mask, -8);
    let (mut inside, mut n) = (0u64, 0u64);
    for ((f, t), (m, r)) in fake
        .pixels()
        .zip(target.pixels())
        .zip(inner.pixels().zip(reach.pixels()))
    {
        if r.0[0] == 0 {
            assert_eq!(f, t, "changed outside the face");
        }
        if m.0[0] == 255 {
            inside += (0..3).map(|c| f.0[c].abs_diff(t.0[c]) as u64).sum::<u64>();
            n += 3;
        }
    }
    let mean = inside as f64 / n as f64;
    assert!(
        mean < 6.0,
        "inside the face the warped donor is {mean:.1} levels off"
    );

    // Without the warp (donor landmarks taken as the target's) the face lands 7 px off.
    let unwarped = graphic_swap(&target, &lm, &donor, &lm, &blend).unwrap();
    let off: u64 = unwarped
        .pixels()
        .zip(target.pixels())
        .zip(inner.pixels())
        .filter(|(_, m)| m.0[0] == 255)
        .map(|((f, t), _)| (0..3).map(|c| f.0[c].abs_diff(t.0[c]) as u64).sum::<u64>())
        .sum();
    assert!(
        off as f64 / n as f64 > 2.0 * mean,
        "{} vs {mean}",
        off as f64 / n as f64
    );
}

#[test]
fn self_blends_are_not_all_softer_inside_than_the_face_they_came_from() {
    // The over-blur shortcut: if every self-blend's face is softer than the real one, a
    // detector learns "soft face = fake". Sharpened copies must put many on the other side.
    let (_, crop, lm) = crops();
    let real = cues(&crop, &lm).over_blur;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    let ratios: Vec<f32> = (0..60)
        .map(|_| {
            let p = SbiParams::sample(&mut rng);
            cues(&self_blend(&crop, &lm, &p).0, &lm).over_blur / real
        })
        .collect();
    let sharper = ratios.iter().filter(|&&r| r < 1.0).count();
    let mean_log = ratios.iter().map(|r| r.ln()).sum::<f32>() / ratios.len() as f32;
    eprintln!(
        "real over-blur {real:.2}; SBI/real: {sharper} of 60 sharper, mean log {mean_log:.2}"
    );
    assert!((15..=45).contains(&sharper), "{sharper} of 60 sharper");
    assert!(mean_log.abs() < 0.5, "mean log ratio {mean_log:.2}");
}

#[test]
fn the_texture_ratios_see_a_face_smoothed_or_noisier_than_its_surround() {
    // A face with another camera's texture: smoothed (a softer camera, a generator) raises
    // the brightness ratios (this video's colour is already subsampled smooth, so its colour
    // noise barely moves); grain added to the face only (a noisier camera) lowers the noise
    // ratios.
    let (_, crop, lm) = crops();
    let base = cues(&crop, &lm).texture;
    eprintln!("untouched: {base:?}");
    let smoothed = cues(&inside_face(&crop, &lm, |c| imageops::blur(c, 1.5)), &lm).texture;
    assert!(
        smoothed.detail > 1.5 * base.detail
            && smoothed.edges > 1.2 * base.edges
            && smoothed.noise > 1.5 * base.noise
            && smoothed.colour_noise >= base.colour_noise,
        "{base:?} -> {smoothed:?}"
    );
    let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
    let grain: Vec<f32> = (0..crop.len())
        .map(|_| rand::RngExt::random_range(&mut rng, -12.0..12.0))
        .collect();
    let grainy = inside_face(&crop, &lm, |c| {
        let mut out = c.clone();
        for (v, n) in out.iter_mut().zip(&grain) {
            *v = (*v as f32 + n).clamp(0.0, 255.0) as u8;
        }
        out
    });
    let grainy = cues(&grainy, &lm).texture;
    assert!(
        grainy.noise < 0.7 * base.noise && grainy.colour_noise < 0.7 * base.colour_noise,
        "{base:?} -> {grainy:?}"
    );
    // The camera check's features are every cue's logarithm, then the detector score's logit.
    let c = cues(&crop, &lm);
    let f = c.camera_features(0.25);
    assert_eq!(f[0], c.over_blur.ln());
    assert_eq!(f[3], c.mouth_blur.max(1e-3).ln());
    assert_eq!(f[6], base.noise.ln());
    assert_eq!(f[..8], c.cue_features());
    assert!((f[8] - (1.0f32 / 3.0).ln()).abs() < 1e-6);
    assert!(c.camera_features(1.0)[8].is_finite() && c.camera_features(0.0)[8].is_finite());
}
