//! Visitors queue at a booth, and the next often steps into the place the last one left within
//! a moment: no gap, no move for the tracker to see. The bundle carries the identity distance
//! at which a face is someone else's (`export` measures it on the trained people); here a real
//! run from the warm start, its exported graph in tract and the booth's visitor following on
//! real faces must switch exactly when the person changes, and never within one person.

use std::time::Duration;

use e2e_tests::{asset, dataset_faces, host_trainer_ok, sample_pair, succeeded, train_pair};
use facekit::visitor::{VisitorIdentity, VisitorPolicy};
use shared_proto::bundle::{self, ModelKind};

#[test]
fn a_newcomer_in_the_last_visitors_place_is_told_apart_by_face_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // carphone as A and movie.avi (the stranger the warm start never saw) as B.
    let (a, b) = sample_pair(d);
    let run = d.join("run");
    let warm = asset("assets/pretrained/lite.safetensors");
    let init = ["--steps", "1", "--init", warm.to_str().unwrap()];
    succeeded(&train_pair(&a, &b, &run, &init), "train");
    let bundle_dir = d.join("bundle");
    let out = host_trainer_ok(
        "export",
        &[
            "--run",
            run.to_str().unwrap(),
            "--out",
            bundle_dir.to_str().unwrap(),
            "--keys",
            d.join("keys").to_str().unwrap(),
        ],
    );
    assert!(out.contains("booths take faces beyond"), "{out}");
    let manifest = bundle::open(&bundle_dir, &[]).unwrap().manifest;
    let entry = manifest.model(ModelKind::Swap, Some("B")).unwrap();
    let distance = entry
        .visitor_switch_distance
        .expect("the warm start's encoder keeps carphone and movie apart");

    let model = facekit::OnnxModel::from_path(&bundle_dir.join(&entry.file), 1, true).unwrap();
    let offsets = |dataset: &str| -> Vec<Vec<f32>> {
        dataset_faces(dataset)
            .into_iter()
            .map(|x| model.run_with_zeros_after(x).unwrap()[2].clone())
            .collect()
    };
    let people = [offsets(&a), offsets(&b)];
    let policy = VisitorPolicy {
        switch_distance: Some(distance),
        ..VisitorPolicy::default()
    };
    let frame = Duration::from_millis(40);
    for (first, second) in [(0, 1), (1, 0)] {
        let mut visitor = VisitorIdentity::new(policy);
        let stream = people[first].iter().chain(&people[second]);
        let switches: Vec<usize> = stream
            .enumerate()
            .filter(|(k, o)| visitor.observe(o, frame * *k as u32))
            .map(|(k, _)| k)
            .collect();
        let arrives = people[first].len();
        assert_eq!(
            switches,
            [arrives + policy.switch_faces as usize - 1],
            "person {first} then {second} without a gap (distance {distance:.1}): the visitor \
             changes at the newcomer's {}th face and nowhere else",
            policy.switch_faces
        );
        // From then on the swap moves the newcomer by their own faces' mean alone.
        let newcomer = &people[second];
        let dims = newcomer[0].len();
        let own: Vec<f64> = (0..dims)
            .map(|i| -newcomer.iter().map(|o| f64::from(o[i])).sum::<f64>() / newcomer.len() as f64)
            .collect();
        let got = visitor
            .offset(frame * (arrives + newcomer.len()) as u32)
            .unwrap();
        let off = own
            .iter()
            .zip(&got)
            .map(|(w, g)| (w - f64::from(*g)).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            off < 1e-3 * distance as f64,
            "{off} from the newcomer's own mean"
        );
    }
}
