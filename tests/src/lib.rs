//! Helpers for the end-to-end tests: locate the repository, the built binaries and the sample
//! media, and run `doppel-device find-faces` natively or under qemu.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use facekit::Detection;
use serde::Deserialize;

/// One line of `detections.jsonl` as the tests read it.
#[derive(Debug, Deserialize)]
pub struct FrameRecord {
    pub frame: u64,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Detection>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn asset(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

/// A binary of this workspace, built next to the test executable (`target/<profile>/`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{} not built: run `cargo build --release --workspace`",
        bin.display()
    );
    bin
}

/// Runs `find-faces` with `cmd` (a native binary or a qemu wrapper) and parses its output.
pub fn find_faces(mut cmd: Command, input: &Path, extra: &[&str]) -> (Output, Vec<FrameRecord>) {
    let out = tempfile::tempdir().expect("temp dir");
    let output = cmd
        .current_dir(root())
        .arg("find-faces")
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out.path())
        .args(extra)
        .output()
        .expect("spawn doppel-device");
    let jsonl = out.path().join("detections.jsonl");
    let records = std::fs::read_to_string(&jsonl)
        .map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).expect("valid JSON line"))
                .collect()
        })
        .unwrap_or_default();
    (output, records)
}

pub fn device_cmd() -> Command {
    Command::new(workspace_bin("doppel-device"))
}

/// One metadata line of an extracted dataset, as the tests read it.
#[derive(Debug, Deserialize)]
pub struct FaceLine {
    pub source: String,
    pub frame: u64,
    pub reason: String,
    pub file: Option<String>,
    pub landmarks: Option<[[f32; 2]; 5]>,
    pub to_crop: Option<facekit::Similarity>,
    pub crop_size: u32,
}

pub fn read_metadata(dataset: &Path) -> Vec<FaceLine> {
    std::fs::read_to_string(dataset.join("metadata.jsonl"))
        .expect("metadata.jsonl exists")
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid metadata line"))
        .collect()
}

/// Runs `host-trainer extract` with `args` (from the repository root).
pub fn extract(args: &[&str]) -> Output {
    Command::new(workspace_bin("host-trainer"))
        .current_dir(root())
        .arg("extract")
        .args(args)
        .output()
        .expect("spawn host-trainer")
}

/// Runs `host-trainer <sub> <args>` from the repository root.
pub fn host_trainer(sub: &str, args: &[&str]) -> Output {
    Command::new(workspace_bin("host-trainer"))
        .current_dir(root())
        .arg(sub)
        .args(args)
        .output()
        .expect("spawn host-trainer")
}

/// Runs `host-trainer <sub> <args>`, asserts it succeeded (showing its output if not) and
/// returns its stdout.
pub fn host_trainer_ok(sub: &str, args: &[&str]) -> String {
    succeeded(&host_trainer(sub, args), sub)
}

/// Asserts `o` succeeded, naming `what` and showing its output if not; returns its stdout.
pub fn succeeded(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The consent the tests record for the sample people.
pub const TEST_CONSENT: &str = "who=sample person;scope=doppel tests";

/// `host-trainer extract --person P --input I --out O --consent TEST_CONSENT <extra>`.
pub fn extract_consented(person: &str, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let (input, out) = (
        input.to_str().expect("utf-8 path"),
        out.to_str().expect("utf-8 path"),
    );
    let mut args = vec![
        "--person",
        person,
        "--input",
        input,
        "--out",
        out,
        "--consent",
        TEST_CONSENT,
    ];
    args.extend(extra);
    extract(&args)
}

/// A small consented dataset (24 faces, 64 px) of `person` from the sample `video` in `dir`.
pub fn small_dataset(dir: &Path, person: &str, video: &str) -> String {
    let out = dir.join(person);
    let o = extract_consented(
        person,
        &asset(video),
        &out,
        &["--size", "64", "--max-faces", "24"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.to_str().expect("utf-8 path").to_owned()
}

/// The tests' two sample people as small datasets in `dir`: A from carphone, B from movie.avi.
pub fn sample_pair(dir: &Path) -> (String, String) {
    (
        small_dataset(dir, "A", "data/carphone_pristine.mp4"),
        small_dataset(dir, "B", "data/movie.avi"),
    )
}

/// `host-trainer train --a A --b B --out RUN --batch-size 4 <extra>`.
pub fn train_pair(a: &str, b: &str, run: &Path, extra: &[&str]) -> Output {
    let run = run.to_str().expect("utf-8 path");
    let mut args = vec!["--a", a, "--b", b, "--out", run, "--batch-size", "4"];
    args.extend(extra);
    host_trainer("train", &args)
}

/// Every face of a dataset in file order (the video's), each as CHW floats in 0..1: the
/// models' input under the default normalisation.
pub fn dataset_faces(dataset: &str) -> Vec<Vec<f32>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(dataset).join("faces"))
        .expect("a dataset from extract")
        .map(|e| e.expect("a readable dataset folder").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let img = image::open(f).expect("a face image").to_rgb8();
            (0..3)
                .flat_map(|c| img.pixels().map(move |p| p.0[c] as f32 / 255.0))
                .collect()
        })
        .collect()
}
