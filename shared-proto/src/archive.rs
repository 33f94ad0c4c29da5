//! The bundle on the wire: `host-trainer deploy` sends a bundle folder as one uncompressed tar
//! (the ONNX files hardly compress) and the booth unpacks it into its staging folder. Both ends
//! live here so they cannot disagree; the booth verifies the unpacked folder with
//! [`crate::bundle::open`] before anything else happens to it.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest archive a booth takes: an `original`-preset f32 bundle with a detector is about
/// 480 MB.
pub const MAX_ARCHIVE_BYTES: u64 = 768 << 20;
/// More entries than any bundle has (manifest, signature, a few models, previews).
pub const MAX_ENTRIES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a bundle archive: {0}")]
    Malformed(String),
    #[error("{0}: not allowed in a bundle archive (only plain files and folders inside it)")]
    Refused(PathBuf),
    #[error("the archive holds more than {0} entries")]
    TooManyEntries(usize),
    #[error("the archive is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A bundle folder as an archive: its plain files, paths relative to the folder, symlinks
/// refused (a bundle never has one).
pub fn pack(dir: &Path) -> Result<Vec<u8>, ArchiveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let full = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .map_err(io(&full))?
            .collect::<Result<_, _>>()
            .map_err(io(&full))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let rel = rel.join(e.file_name());
            let kind = e.file_type().map_err(io(&e.path()))?;
            if kind.is_dir() {
                pending.push(rel);
            } else if kind.is_file() {
                tar.append_path_with_name(e.path(), &rel)
                    .map_err(io(&e.path()))?;
            } else {
                return Err(ArchiveError::Refused(rel));
            }
        }
    }
    tar.into_inner().map_err(io(dir))
}

/// Unpacks an archive into the empty folder `dir`: plain files and folders only, every path
/// inside `dir`, at most [`MAX_ENTRIES`] entries and [`MAX_ARCHIVE_BYTES`] in all, each file
/// synced. Stops at the first violation; the caller removes `dir`.
pub fn unpack(archive: impl Read, dir: &Path) -> Result<(), ArchiveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    let malformed = |e: std::io::Error| ArchiveError::Malformed(e.to_string());
    let mut tar = tar::Archive::new(archive.take(MAX_ARCHIVE_BYTES + 1));
    let (mut total, mut count) = (0u64, 0usize);
    for entry in tar.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries(MAX_ENTRIES));
        }
        let rel = entry.path().map_err(malformed)?.into_owned();
        let inside = rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let kind = entry.header().entry_type();
        if !inside || !(kind.is_dir() || kind.is_file()) {
            return Err(ArchiveError::Refused(rel));
        }
        let out = dir.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&out).map_err(io(&out))?;
            continue;
        }
        total = total.saturating_add(entry.size());
        if total > MAX_ARCHIVE_BYTES {
            return Err(ArchiveError::TooLarge(MAX_ARCHIVE_BYTES));
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // create_new: a second entry with the same name cannot overwrite a checked one, and a
        // path never follows a link (there are none: only plain files are written).
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)
            .map_err(io(&out))?;
        std::io::copy(&mut entry, &mut f).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => malformed(e),
            _ => ArchiveError::Io {
                path: out.clone(),
                source: e,
            },
        })?;
        f.sync_all().map_err(io(&out))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // set_path refuses `..`; write the raw name as a hostile sender would.
        let name = &mut h.as_gnu_mut().unwrap().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let h = header(path, *kind, data.len() as u64);
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_folder_round_trips_and_hostile_archives_are_refused() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("models")).unwrap();
        std::fs::write(src.path().join("manifest.bin"), b"m").unwrap();
        std::fs::write(src.path().join("models/swap.onnx"), vec![7u8; 5000]).unwrap();
        let packed = pack(src.path()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        unpack(&packed[..], dst.path()).unwrap();
        assert_eq!(
            std::fs::read(dst.path().join("manifest.bin")).unwrap(),
            b"m"
        );
        assert_eq!(
            std::fs::read(dst.path().join("models/swap.onnx")).unwrap(),
            vec![7u8; 5000]
        );
        // Packing is deterministic: the same folder gives the same bytes.
        assert_eq!(pack(src.path()).unwrap(), packed);

        use tar::EntryType as T;
        /// Entries of a hand-made archive: name, type, content.
        type Entries<'a> = &'a [(&'a str, T, &'a [u8])];
        let hostile: [(Entries, &str); 5] = [
            (&[("../escape", T::Regular, b"x")], "not allowed"),
            (&[("/etc/passwd", T::Regular, b"x")], "not allowed"),
            (&[("link", T::Symlink, b"")], "not allowed"),
            (&[("fifo", T::Fifo, b"")], "not allowed"),
            (
                &[("a", T::Regular, b"1"), ("a", T::Regular, b"2")],
                "exists",
            ),
        ];
        for (entries, want) in hostile {
            let dst = tempfile::tempdir().unwrap();
            let err = unpack(&archive(entries)[..], dst.path()).unwrap_err();
            assert!(err.to_string().contains(want), "{entries:?}: {err}");
        }
        let truncated = &packed[..packed.len() / 2 + 100];
        let dst = tempfile::tempdir().unwrap();
        assert!(unpack(truncated, dst.path()).is_err());
        // Junk either fails or unpacks nothing; the bundle check then finds no manifest.
        let dst = tempfile::tempdir().unwrap();
        let junk = unpack(&b"not a tar at all, just text that goes on"[..], dst.path());
        assert!(junk.is_err() || std::fs::read_dir(dst.path()).unwrap().next().is_none());
    }
}
