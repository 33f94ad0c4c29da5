//! Each curation rule, proven on real frames made worse on purpose: the damaged copy is rejected
//! for the right reason and the untouched frame is kept.

use std::collections::HashMap;
use std::path::Path;

use e2e_tests::{asset, extract, extract_consented, read_metadata};
use facekit::{FrameSource, VideoReader};
use image::{imageops, Rgb, RgbImage};

fn frames(indices: &[u64]) -> Vec<RgbImage> {
    let mut video = VideoReader::open(asset("data/carphone_pristine.mp4")).unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(f) = video.next_frame().unwrap() {
        if indices.contains(&i) {
            out.push(f);
        }
        i += 1;
    }
    out
}

fn map(img: &RgbImage, f: impl Fn([f32; 3]) -> [f32; 3]) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0.map(|v| v as f32);
        Rgb(f(p).map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

/// The frame shrunk to `scale` and centred on a grey canvas of the original size.
fn shrink(img: &RgbImage, scale: f32) -> RgbImage {
    let (w, h) = (
        (img.width() as f32 * scale) as u32,
        (img.height() as f32 * scale) as u32,
    );
    let small = imageops::resize(img, w, h, imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(img.width(), img.height(), Rgb([110, 110, 110]));
    imageops::overlay(
        &mut canvas,
        &small,
        ((img.width() - w) / 2) as i64,
        ((img.height() - h) / 2) as i64,
    );
    canvas
}

/// Two frames side by side: two faces in one picture.
fn two_faces(a: &RgbImage, b: &RgbImage) -> RgbImage {
    let mut canvas = RgbImage::new(a.width() + b.width(), a.height().max(b.height()));
    imageops::overlay(&mut canvas, a, 0, 0);
    imageops::overlay(&mut canvas, b, a.width() as i64, 0);
    canvas
}

#[test]
fn each_rule_rejects_its_damage_and_keeps_the_originals() {
    let originals = frames(&[0, 40, 80, 110]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("frames");
    std::fs::create_dir_all(&input).unwrap();
    let save = |name: &str, img: &RgbImage| img.save(input.join(format!("{name}.png"))).unwrap();

    let mut expected: HashMap<String, &str> = HashMap::new();
    for (k, f) in originals.iter().enumerate() {
        // Names sort so the originals come first (the duplicate must follow its original).
        save(&format!("a_original_{k}"), f);
        expected.insert(format!("a_original_{k}"), "accepted");
    }
    let cases: Vec<(&str, RgbImage, &str)> = vec![
        ("b_blurred", imageops::blur(&originals[0], 2.5), "blurry"),
        (
            "b_darkened",
            map(&originals[1], |p| p.map(|v| v * 0.22)),
            "dark",
        ),
        (
            "b_overexposed",
            map(&originals[3], |p| p.map(|v| v * 2.2 + 40.0)),
            "overexposed",
        ),
        (
            "b_tinted",
            map(&originals[2], |[r, g, b]| [r * 0.55, g * 1.25, b * 0.9]),
            "tinted",
        ),
        ("b_shrunk", shrink(&originals[3], 0.5), "too_small"),
        (
            "b_two_faces",
            two_faces(&originals[0], &originals[2]),
            "multi_face",
        ),
        ("c_copy_of_original", originals[1].clone(), "duplicate"),
    ];
    for (name, img, reason) in &cases {
        save(name, img);
        expected.insert(name.to_string(), reason);
    }

    let out = dir.path().join("A");
    let o = extract_consented("A", &input, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let lines = read_metadata(&out);
    for (name, want) in &expected {
        let got: Vec<&str> = lines
            .iter()
            .filter(|l| Path::new(&l.source).file_stem().unwrap().to_str() == Some(name.as_str()))
            .map(|l| l.reason.as_str())
            .collect();
        assert!(!got.is_empty(), "{name}: no record");
        assert!(
            got.iter().all(|g| g == want),
            "{name}: expected {want}, got {got:?}"
        );
    }
}

#[test]
fn bad_inputs_fail_clearly_and_keep_earlier_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("A");
    let video = asset("data/carphone_pristine.mp4");
    assert!(extract_consented("A", &video, &out, &["--max-faces", "12"])
        .status
        .success());
    let before = read_metadata(&out).len();
    let faces_before = std::fs::read_dir(out.join("faces")).unwrap().count();
    assert_eq!(faces_before, 12);

    // Unreadable video: skipped with its reason (named in the log and the journal), the faces
    // already in the dataset untouched.
    let broken = dir.path().join("broken.mp4");
    std::fs::write(
        &broken,
        b"\x00\x00\x00\x18ftypmp42 this is not a video at all",
    )
    .unwrap();
    let o = extract(&[
        "--person",
        "A",
        "--input",
        broken.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("broken.mp4") && err.contains("cannot be decoded"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("unreadable   1"));
    let lines = read_metadata(&out);
    assert_eq!(lines.len(), before + 1);
    let last = lines.last().unwrap();
    assert!(last.reason == "unreadable" && last.source.ends_with("broken.mp4"));
    assert_eq!(
        std::fs::read_dir(out.join("faces")).unwrap().count(),
        faces_before
    );

    // Zero faces: a folder of plain pictures.
    let empty = dir.path().join("walls");
    std::fs::create_dir_all(&empty).unwrap();
    for k in 0..3u8 {
        RgbImage::from_pixel(160, 120, Rgb([90 + k * 20, 100, 110]))
            .save(empty.join(format!("{k}.png")))
            .unwrap();
    }
    let other = dir.path().join("C");
    let o = extract_consented("C", &empty, &other, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no usable face found"),
        "{err}"
    );

    // Output folder not writable: a path below a regular file.
    let file = dir.path().join("plainfile");
    std::fs::write(&file, b"x").unwrap();
    let bad_out = file.join("A");
    let o = extract_consented("A", &video, &bad_out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("cannot write") && err.contains("plainfile"),
        "{err}"
    );

    // A new dataset without consent is refused.
    let o = extract(&[
        "--person",
        "D",
        "--input",
        video.to_str().unwrap(),
        "--out",
        dir.path().join("D").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--consent"), "{err}");
}

#[test]
fn reference_photos_keep_the_consenting_person_and_reject_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let refs = dir.path().join("ref_a");
    std::fs::create_dir_all(&refs).unwrap();
    for (k, f) in frames(&[0, 20, 40, 60, 80]).iter().enumerate() {
        f.save(refs.join(format!("{k}.png"))).unwrap();
    }
    let run = |person: &str, video: &str| {
        let out = dir.path().join(person);
        let o = extract_consented(
            person,
            &asset(video),
            &out,
            &["--reference", refs.to_str().unwrap()],
        );
        (o, read_metadata(&out))
    };
    let (o, a) = run("A", "data/carphone_pristine.mp4");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept = a.iter().filter(|l| l.reason == "accepted").count();
    assert!(kept >= 110, "A with A's reference keeps {kept}");
    // Someone else against A's reference: every face is refused, so no dataset is made.
    let (o, b) = run("B", "data/movie.avi");
    assert!(!o.status.success(), "no face of B may pass as A");
    assert!(
        b.iter().all(|l| l.reason == "wrong_person"),
        "{:?}",
        b.iter().map(|l| &l.reason).collect::<Vec<_>>()
    );
}
