//! Runs the outside identity judge (`scripts/peers/identity_judge.py`: dlib's face detector and
//! face-recognition descriptor) on swapped frames and real reference frames.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;

use crate::artefacts::run::IdentityJudgement;
use crate::error::{AtPath, Error, Result};

/// How to start the judge: the venv's Python and the script.
#[derive(Debug, Clone)]
pub struct JudgeCommand {
    pub python: PathBuf,
    pub script: PathBuf,
}

impl JudgeCommand {
    /// `.venv/bin/python scripts/peers/identity_judge.py` under `root` (what `make setup`
    /// installs).
    pub fn in_repository(root: &Path) -> Self {
        Self {
            python: root.join(".venv/bin/python"),
            script: root.join("scripts/peers/identity_judge.py"),
        }
    }
}

/// One swap direction for the judge: `name` (`A->B`), the people, and (original, swapped)
/// frame pairs.
pub struct Direction<'a> {
    pub name: String,
    pub source: String,
    pub target: String,
    pub pairs: &'a [(RgbImage, RgbImage)],
}

/// Judges `directions` against the mean descriptors of each person's `references` frames.
pub fn judge(
    cmd: &JudgeCommand,
    references: &[(String, Vec<RgbImage>)],
    directions: &[Direction<'_>],
) -> Result<IdentityJudgement> {
    for p in [&cmd.python, &cmd.script] {
        if !p.is_file() {
            return Err(Error::Judge(format!(
                "{} not found; run `make setup` (or pass --no-judge)",
                p.display()
            )));
        }
    }
    let dir = tempfile::tempdir().at("create", &std::env::temp_dir())?;
    let mut written = 0usize;
    let mut save = |image: &RgbImage| -> Result<String> {
        let path = dir.path().join(format!("{written:05}.png"));
        written += 1;
        image.save(&path).at("write", &path)?;
        Ok(path.display().to_string())
    };
    let mut refs = serde_json::Map::new();
    for (person, frames) in references {
        let paths = frames.iter().map(&mut save).collect::<Result<Vec<_>>>()?;
        refs.insert(person.clone(), paths.into());
    }
    let mut dirs = Vec::new();
    for d in directions {
        let (mut originals, mut swapped) = (Vec::new(), Vec::new());
        for (o, s) in d.pairs {
            originals.push(save(o)?);
            swapped.push(save(s)?);
        }
        dirs.push(serde_json::json!({
            "name": d.name, "source": d.source, "target": d.target,
            "original": originals, "swapped": swapped,
        }));
    }
    let job = dir.path().join("job.json");
    let text = serde_json::json!({"references": refs, "directions": dirs}).to_string();
    std::fs::write(&job, text).at("write", &job)?;
    let out = Command::new(&cmd.python)
        .arg(&cmd.script)
        .arg(&job)
        .output()
        .at("run", &cmd.python)?;
    if !out.status.success() {
        return Err(Error::Judge(format!(
            "{} failed: {}{}",
            cmd.script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    serde_json::from_slice(&out.stdout).at("parse the output of", &cmd.script)
}
