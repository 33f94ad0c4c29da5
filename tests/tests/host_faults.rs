//! Faults and hostile input on the workstation side, each on the real binaries: a damaged file
//! among good ones, Ctrl-C in a terminal, names that are paths, broken consent records, a
//! preview that cannot be written, a NaN setting, and a bundle replaced under a reader's feet.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_tests::{
    asset, extract, extract_consented, host_trainer, host_trainer_ok, read_metadata, root,
    sample_pair, succeeded, train_pair, workspace_bin, TEST_CONSENT,
};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Twenty frames of the sample video as PNGs, one of them cut off half-way.
fn photos_with_one_truncated(dir: &Path) -> std::path::PathBuf {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(asset("data/carphone_pristine.mp4"))
        .args(["-frames:v", "20"])
        .arg(photos.join("%02d.png"))
        .status()
        .unwrap();
    assert!(status.success());
    let victim = photos.join("07.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    photos
}

#[test]
fn one_unreadable_photo_is_skipped_with_a_reason_and_the_rest_extracted() {
    let dir = tempfile::tempdir().unwrap();
    let photos = photos_with_one_truncated(dir.path());
    let out = dir.path().join("A");
    let o = extract_consented("A", &photos, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("unreadable   1"), "{stdout}");
    let lines = read_metadata(&out);
    let bad: Vec<_> = lines.iter().filter(|l| l.reason == "unreadable").collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].source.ends_with("07.png"));
    // Every other photo was read and judged (kept, or a near-duplicate of its neighbour).
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().filter(|l| l.reason == "accepted").count() >= 15);
    // A rerun skips it as done instead of failing on it again.
    let o = extract_consented("A", &photos, &out, &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("20 skipped as already done"));
}

#[test]
fn ctrl_c_in_the_terminal_finishes_the_frames_in_flight_and_leaves_a_valid_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("A");
    // A terminal sends SIGINT to the whole foreground process group: ffmpeg included.
    let child = Command::new(workspace_bin("host-trainer"))
        .current_dir(root())
        .args(["extract", "--person", "A", "--input"])
        .arg(asset("data/franck.mp4"))
        .arg("--out")
        .arg(&out)
        .args(["--consent", TEST_CONSENT])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id() as i32;
    // Wait until extraction is under way (the journal has lines), then press Ctrl-C.
    let started = Instant::now();
    while read_lines(&out) < 40 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signals our own child's process group.
    unsafe { libc::kill(-group, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", stderr(&o));
    assert!(stdout.contains("interrupted"), "{stdout}");
    let n = read_metadata(&out).len();
    assert!((40..4800).contains(&n), "{n} frames journalled");
}

fn read_lines(dataset: &Path) -> usize {
    std::fs::read_to_string(dataset.join("metadata.jsonl")).map_or(0, |t| t.lines().count())
}

#[test]
fn a_person_name_that_is_a_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data/A");
    for name in ["../x", "a/b", ".hidden", ""] {
        let o = extract_consented(name, &asset("data/movie.avi"), &out, &["--max-faces", "2"]);
        assert!(
            !o.status.success() && stderr(&o).contains("--person"),
            "{name}: {}",
            stderr(&o)
        );
    }
    assert!(!dir.path().join("data/x_movie").exists());
    let written: Vec<_> = walk(dir.path());
    assert!(written.iter().all(|p| !p.ends_with(".png")), "{written:?}");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn a_damaged_or_empty_consent_record_is_never_overwritten_nor_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sample_pair(dir.path());
    let consent = Path::new(&a).join("consent.toml");

    // Not UTF-8: extract must not take it for "no consent yet" and write a new one.
    let damaged = b"who = \"A\xff\xfe\"\nscope = \"x\"\nwhen = \"2026\"\n".to_vec();
    std::fs::write(&consent, &damaged).unwrap();
    let o = extract(&[
        "--person",
        "A",
        "--input",
        asset("data/carphone_pristine.mp4").to_str().unwrap(),
        "--out",
        &a,
        "--consent",
        "who=someone else;scope=anything",
    ]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("consent.toml"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&consent).unwrap(), damaged);

    // Parsed but empty: nobody agreed to anything, so nothing trains on it or ships it.
    std::fs::write(
        &consent,
        "who = \" \"\nscope = \"\"\nwhen = \"2026-11-30\"\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let o = train_pair(&a, &b, &run, &["--steps", "1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("consent") && stderr(&o).contains("empty"),
        "{}",
        stderr(&o)
    );
    assert!(!run.join("checkpoint.safetensors").exists());
}

#[test]
fn a_preview_that_cannot_be_written_does_not_stop_training() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sample_pair(dir.path());
    let run = dir.path().join("run");
    // A folder where the preview image goes: every write of it fails.
    std::fs::create_dir_all(run.join("preview.png")).unwrap();
    let o = train_pair(&a, &b, &run, &["--steps", "2", "--preview-every", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("preview not written"), "{}", stderr(&o));
    assert!(run.join("checkpoint.safetensors").is_file());
}

#[test]
fn a_nan_smoothing_cutoff_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["nan", "inf", "-1", "0"] {
        let o = host_trainer(
            "convert",
            &[
                "--run",
                dir.path().to_str().unwrap(),
                "--input",
                asset("data/carphone_pristine.mp4").to_str().unwrap(),
                "--output",
                dir.path().join("x.mp4").to_str().unwrap(),
                &format!("--smooth-cutoff={value}"),
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{value}: {}", stderr(&o));
        assert!(stderr(&o).contains("--smooth-cutoff"), "{}", stderr(&o));
    }
}

#[test]
fn a_new_export_replaces_the_old_bundle_without_a_moment_of_no_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sample_pair(dir.path());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    succeeded(&train_pair(&a, &b, &run, &["--steps", "1"]), "train");
    let bundle = dir.path().join("bundle");
    let keys = dir.path().join("keys");
    let export = [
        "--run",
        r,
        "--out",
        bundle.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ];
    host_trainer_ok("export", &export);
    // A reader looks for the manifest as fast as it can while the bundle is replaced.
    let (stop, misses, looks) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let reader = {
        let (stop, misses, looks) = (stop.clone(), misses.clone(), looks.clone());
        let manifest = bundle.join("manifest.bin");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if !manifest.is_file() {
                    misses.fetch_add(1, Ordering::Relaxed);
                }
                looks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    host_trainer_ok("export", &export);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(looks.load(Ordering::Relaxed) > 1000);
    assert_eq!(misses.load(Ordering::Relaxed), 0, "the bundle was missing");
    assert!(!dir.path().join("bundle.export-tmp").exists());
}

#[test]
fn a_checkpoint_reaches_the_disk_before_it_replaces_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sample_pair(dir.path());
    let run = dir.path().join("run");
    // strace (Debian's, `make setup` installs it) shows the system calls in order, with the
    // file behind each descriptor (-y).
    let o = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
        ])
        .arg(workspace_bin("host-trainer"))
        .current_dir(root())
        .args(["train", "--a", &a, "--b", &b, "--out"])
        .arg(&run)
        .args(["--steps", "2", "--batch-size", "4", "--save-every", "1"])
        .output()
        .expect("strace runs (make setup)");
    assert!(o.status.success(), "{}", stderr(&o));
    let trace = stderr(&o);
    let calls: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("checkpoint.safetensors"))
        .collect();
    let renames: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("rename"))
        .map(|(i, _)| i)
        .collect();
    assert!(renames.len() >= 2, "{calls:#?}");
    for r in renames {
        // The new file's bytes were synced before it was renamed over the last checkpoint.
        let synced = calls[..r]
            .iter()
            .rev()
            .take_while(|l| !l.contains("rename"))
            .any(|l| l.contains("sync") && l.contains("checkpoint.safetensors.part"));
        assert!(
            synced,
            "rename without an fsync of its file first:\n{calls:#?}"
        );
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    // `host-trainer … | head -1`, with a reader that has already gone: the writes that follow
    // meet a closed pipe, which must end the command as it ends any Unix filter, not panic.
    let mut child = Command::new(workspace_bin("host-trainer"))
        .current_dir(root())
        .args(["model-info", "--preset", "lite"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{err}");
    // The same command read to the end prints every layer.
    let full = host_trainer_ok("model-info", &["--preset", "lite"]);
    assert!(full.lines().count() > 10, "{full}");
}
