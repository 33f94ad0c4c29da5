//! The detection slice on the two sample videos, through the real binary.

use e2e_tests::{asset, device_cmd, find_faces, FrameRecord};

fn check_video(file: &str, frames: usize, min_single_face: usize) {
    let (output, records) = find_faces(device_cmd(), &asset(file), &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("contact sheet:"),
        "prints where it wrote: {stdout}"
    );
    assert_eq!(
        records.len(),
        frames,
        "{file}: every frame gets a JSON line"
    );

    let good: Vec<&FrameRecord> = records
        .iter()
        .filter(|r| r.faces.len() == 1 && r.faces[0].score >= 0.9)
        .collect();
    assert!(
        good.len() >= min_single_face,
        "{file}: exactly one face at score >= 0.9 in {} of {frames} frames, need {min_single_face}",
        good.len()
    );
    for r in good {
        let f = &r.faces[0];
        let [x0, y0, x1, y1] = f.bbox;
        let [eye_l, eye_r, nose, mouth_l, mouth_r] = f.landmarks;
        let inside = |p: [f32; 2]| p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1;
        assert!(
            f.landmarks.iter().all(|&p| inside(p)),
            "frame {}: landmark outside box {f:?}",
            r.frame
        );
        assert!(
            eye_l[1].max(eye_r[1]) < mouth_l[1].min(mouth_r[1]),
            "frame {}: eyes not above mouth",
            r.frame
        );
        assert!(
            eye_l[1].max(eye_r[1]) < nose[1] && nose[1] < mouth_l[1].max(mouth_r[1]),
            "frame {}: nose not between",
            r.frame
        );
        assert!(
            eye_l[0] < eye_r[0] && mouth_l[0] < mouth_r[0],
            "frame {}: left/right swapped",
            r.frame
        );
        // A face in these clips fills a good part of a small frame.
        assert!(
            f.width() > 0.15 * r.width as f32,
            "frame {}: face implausibly small",
            r.frame
        );
    }
}

#[test]
fn carphone_has_one_face_in_nearly_every_frame() {
    check_video("data/carphone_pristine.mp4", 120, 118);
}

#[test]
fn kphotoalbum_movie_has_one_face_in_nearly_every_frame() {
    check_video("data/movie.avi", 68, 66);
}
