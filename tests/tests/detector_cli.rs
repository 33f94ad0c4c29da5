//! `host-trainer train-detector` on the sample people: SBI and graphics-swap fakes only (no
//! swap run), a short fit, and the report and artefacts it promises; then with a swap run.

use e2e_tests::{
    asset, extract_consented, host_trainer, host_trainer_ok, read_metadata, sample_pair, succeeded,
    train_pair,
};

#[test]
fn a_short_detector_run_holds_each_identity_out_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sample_pair(dir.path());
    // The third identity is the group of photos: many people, cameras and faces per photo.
    let photos = dir.path().join("photos");
    let o = extract_consented(
        "photos",
        &asset("data/photos/SHA256SUMS").with_file_name(""),
        &photos,
        &[
            "--config",
            asset("configs/curation.photos.toml").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept: Vec<_> = read_metadata(&photos)
        .into_iter()
        .filter(|f| f.reason == "accepted")
        .collect();
    let most_in_one = kept
        .iter()
        .map(|f| kept.iter().filter(|g| g.source == f.source).count())
        .max();
    assert!(kept.len() >= 20 && most_in_one >= Some(4), "{kept:?}");
    let c = photos.to_str().unwrap().to_owned();
    let out = dir.path().join("det");
    let o = host_trainer(
        "train-detector",
        &[
            "--a",
            &a,
            "--b",
            &b,
            "--identity",
            &c,
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "40",
            "--seeds",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "detector.safetensors",
        "detector.toml",
        "eval_detector.md",
        "eval_detector.json",
        "roc.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval_detector.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["identities"],
        serde_json::json!(["A", "B", "photos"])
    );
    let cells = report["cells"].as_array().unwrap();
    // Without a swap run: trained on SBI, then on SBI + graphics swaps; each identity held out
    // in turn and tested on its SBI and graphics swaps; each cell fitted with two seeds.
    let keys: Vec<(String, String, String)> = cells
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            (s("trained_on"), s("held_out"), s("tested_on"))
        })
        .collect();
    // Each cell's network is scored alone, then with the blur check fitted on its training faces,
    // then as a booth calibrated on the held-out camera scores its late faces.
    let mut want = Vec::new();
    for trained in ["SBI", "SBI + graphics swap"] {
        for held in ["A", "B", "photos"] {
            for with in ["", " + blur check", " + blur check + camera calibration"] {
                for tested in ["SBI", "graphics swap"] {
                    want.push((
                        format!("{trained}{with}"),
                        held.to_owned(),
                        tested.to_owned(),
                    ));
                }
            }
        }
    }
    assert_eq!(keys, want);
    for c in cells {
        assert_eq!(c["seeds"], 2);
        // A calibrated camera is scored on its late faces only (the early ones calibrate).
        let camera = c["trained_on"]
            .as_str()
            .unwrap()
            .ends_with("camera calibration");
        let least = if camera { 3 } else { 20 };
        assert!(c["real"].as_u64().unwrap() >= least, "{c}");
        assert!(c["fake"].as_u64().unwrap() >= least, "{c}");
        assert!(c["clips_real"].as_u64().unwrap() >= 1);
        if c["held_out"] == "photos" && !camera {
            // Every photo is a clip of its own.
            assert!(c["clips_real"].as_u64().unwrap() >= 10, "{c}");
        }
        for key in ["auc", "auc_same_video", "clip_auc", "ap", "eer"] {
            let v = c[key].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=1.0).contains(&v), "{key} {v} in {c}");
        }
        assert!(c["auc_sd"].as_f64().unwrap() >= 0.0);
    }
    // SBI tests pair every real face with its own self-blend.
    assert_eq!(cells[0]["fake"], cells[0]["real"]);
    // The training-set sharpness check and each cue's own AUC are in the report.
    let kinds: Vec<&str> = report["sharpness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in ["real", "SBI", "graphics swap"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let cues = report["cues"].as_array().unwrap();
    assert_eq!(cues.len(), 6);
    // The texture cues, the two-sided sharpness mismatch against the other identities' real
    // faces, and the camera check fitted on the held-out camera's own early faces (a booth's
    // calibration) are each an AUC.
    for c in cues {
        for key in [
            "detail",
            "noise",
            "colour_noise",
            "sharpness_mismatch",
            "camera_check",
        ] {
            let v = c[key].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=1.0).contains(&v), "{key} {v} in {c}");
        }
    }
    let md = std::fs::read_to_string(out.join("eval_detector.md")).unwrap();
    for heading in [
        "## Summary",
        "## Training-set sharpness check",
        "clip AUC",
        "(unseen)",
    ] {
        assert!(md.contains(heading), "{heading}:\n{md}");
    }
    assert_eq!(report["params"], 15593);

    // The saved detector on one dataset, every crop it scored written out to look at.
    let eval = dir.path().join("eval");
    let crops = dir.path().join("crops");
    host_trainer_ok(
        "eval-detector",
        &[
            "--detector",
            out.to_str().unwrap(),
            "--dataset",
            &c,
            "--donors",
            &a,
            "--out",
            eval.to_str().unwrap(),
            "--save-crops",
            crops.to_str().unwrap(),
        ],
    );
    assert!(eval.join("eval_detector.md").is_file() && eval.join("roc.png").is_file());
    let listed = std::fs::read_to_string(crops.join("samples.csv")).unwrap();
    let mut lines = listed.lines();
    assert_eq!(lines.next(), Some("file,kind,late,network,over_blur"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Each real face of the photos, its self-blend and its graphics swap.
    assert_eq!(rows.len(), 3 * kept.len(), "{listed}");
    for kind in ["real", "SBI", "graphics swap"] {
        assert_eq!(rows.iter().filter(|r| r[1] == kind).count(), kept.len());
    }
    for r in &rows {
        let crop = image::open(crops.join(r[0])).unwrap();
        assert_eq!((crop.width(), crop.height()), (128, 128), "{r:?}");
        let score: f32 = r[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "{r:?}");
        assert!(r[4].parse::<f32>().unwrap() > 0.0, "{r:?}");
    }

    // With a swap run, the detector joins a bundle and `detect` scores videos with it.
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    succeeded(&train_pair(&a, &b, &run, &["--steps", "3"]), "train");
    let det = dir.path().join("det2");
    host_trainer_ok(
        "train-detector",
        &[
            "--a",
            &a,
            "--b",
            &b,
            "--run",
            r,
            "--out",
            det.to_str().unwrap(),
            "--steps",
            "20",
            "--seeds",
            "1",
            "--boundary-weight",
            "1",
        ],
    );
    // The boundary target trained beside the label; the exported network below has no head.
    let settings = std::fs::read_to_string(det.join("detector.toml")).unwrap();
    assert!(settings.contains("boundary_weight = 1.0"), "{settings}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(det.join("eval_detector.json")).unwrap())
            .unwrap();
    let tested: Vec<&str> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tested_on"].as_str().unwrap())
        .collect();
    assert!(
        tested.contains(&"swap") && tested.contains(&"reconstruction"),
        "{tested:?}"
    );
    // Swaps and reconstructions are only tested on (an unseen generator), never trained on.
    let mut trained: Vec<&str> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trained_on"].as_str().unwrap())
        .collect();
    trained.sort();
    trained.dedup();
    assert_eq!(
        trained,
        [
            "SBI",
            "SBI + blur check",
            "SBI + blur check + camera calibration"
        ]
    );
    assert_eq!(report["boundary_weight"], 1.0);
    // Every checked cell scores the same frames as its network alone. (No AUC is asserted for
    // the check here: a 3-step run's swaps are not softer than these tiny crops' real faces.)
    let cells = report["cells"].as_array().unwrap();
    for c in cells
        .iter()
        .filter(|c| c["trained_on"] == "SBI + blur check")
    {
        let alone = cells
            .iter()
            .find(|d| {
                d["trained_on"] == "SBI"
                    && d["held_out"] == c["held_out"]
                    && d["tested_on"] == c["tested_on"]
            })
            .unwrap_or_else(|| panic!("no network-alone cell beside {c}"));
        assert_eq!(
            (&c["real"], &c["fake"]),
            (&alone["real"], &alone["fake"]),
            "{c}"
        );
    }
    assert!(settings.contains("[blur_check]"), "{settings}");
    let bundle = dir.path().join("bundle");
    let keys = dir.path().join("keys");
    let exported = host_trainer_ok(
        "export",
        &[
            "--run",
            r,
            "--detector",
            det.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
    );
    // The exported detector equals tch in tract on real faces too, not just on noise.
    let line = exported
        .lines()
        .find(|l| l.starts_with("detector: f32 graph vs tch"))
        .unwrap_or_else(|| panic!("{exported}"));
    let real: f64 = line
        .split_whitespace()
        .rev()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(real <= 1e-4, "{line}");
    let scored = dir.path().join("scored");
    let video = e2e_tests::asset("data/carphone_pristine.mp4");
    let printed = host_trainer_ok(
        "detect",
        &[
            "--bundle",
            bundle.to_str().unwrap(),
            "--input",
            video.to_str().unwrap(),
            "--out",
            scored.to_str().unwrap(),
            "--max-frames",
            "8",
            "--review",
            scored.join("review.mp4").to_str().unwrap(),
        ],
    );
    assert!(
        printed.contains("REAL") || printed.contains("FAKE"),
        "{printed}"
    );
    // The review video, read back by ffprobe/ffmpeg: one page per frame, four times slower
    // than the source, the face crop drawn on the right of every page.
    let review = scored.join("review.mp4");
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=width,height,nb_read_frames,r_frame_rate",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&review)
        .output()
        .unwrap();
    let probed = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    let fields: Vec<&str> = probed.split(',').collect();
    assert_eq!(fields[..2], ["720", "400"], "{probed}");
    assert_eq!(fields[3], "8", "{probed}");
    let rate = |spec: &str| -> f64 {
        let (n, d) = spec.split_once('/').unwrap();
        n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
    };
    let source_rate = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=r_frame_rate", "-of", "csv=p=0"])
        .arg(&video)
        .output()
        .unwrap();
    let source_rate = rate(String::from_utf8_lossy(&source_rate.stdout).trim());
    assert!(
        (rate(fields[2]) - source_rate / 4.0).abs() < 0.5,
        "{probed} vs source {source_rate}"
    );
    let page = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&review)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert_eq!(page.stdout.len(), 720 * 400 * 3);
    let page = image::RgbImage::from_raw(720, 400, page.stdout).unwrap();
    // The crop panel (x 440–696, y 10–266) holds a face, not the dark background.
    let bright = (440..696)
        .flat_map(|x| (10..266).map(move |y| (x, y)))
        .filter(|&(x, y)| page.get_pixel(x, y).0.iter().any(|&v| v > 60))
        .count();
    assert!(
        bright > 256 * 256 / 2,
        "{bright} bright pixels in the crop panel"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scored.join("detect.json")).unwrap())
            .unwrap();
    assert_eq!(json["frames_with_face"], 8);
    // The bundle carries the blur check; each frame's score is the network's, raised or kept.
    assert!(
        json["detector"].as_str().unwrap().contains("blur check"),
        "{}",
        json["detector"]
    );
    for f in json["per_frame"].as_array().unwrap() {
        let (score, network) = (f["score"].as_f64().unwrap(), f["network"].as_f64().unwrap());
        assert!(score >= network && score <= 1.0, "{f}");
    }
    // The threshold calibrated on held-out frames travels from detector.toml through the signed
    // manifest into the verdict.
    let calibrated: f64 = std::fs::read_to_string(det.join("detector.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("threshold = "))
        .expect("detector.toml records the threshold")
        .parse()
        .unwrap();
    assert!(calibrated > 0.0 && calibrated < 1.0, "{calibrated}");
    assert!(
        report["threshold_from"]
            .as_str()
            .unwrap()
            .contains("equal-error"),
        "{}",
        report["threshold_from"]
    );
    let used = json["threshold"].as_f64().unwrap();
    assert!((used - calibrated).abs() < 1e-6, "{used} vs {calibrated}");
    assert!(scored.join("score.png").is_file());
    // No face at all: an error that says so, not a score.
    let blank = dir.path().join("blank");
    std::fs::create_dir_all(&blank).unwrap();
    image::RgbImage::from_pixel(160, 120, image::Rgb([90, 90, 90]))
        .save(blank.join("0001.png"))
        .unwrap();
    let o = host_trainer(
        "detect",
        &[
            "--bundle",
            bundle.to_str().unwrap(),
            "--input",
            blank.to_str().unwrap(),
            "--out",
            scored.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no face found"));

    // A dataset path that is not a dataset fails clearly.
    let o = host_trainer(
        "train-detector",
        &[
            "--a",
            "/nonexistent",
            "--b",
            &b,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent"));
}
