//! The host's ed25519 signing key: created on first use, kept as hex in a private file. Devices
//! trust bundles by this key's public half (`host.pub`, what `host-trainer keys` prints).

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::error::{AtPath, Error, Result};

pub const SECRET: &str = "host.key";
pub const PUBLIC: &str = "host.pub";

/// `$DOPPEL_KEYS`, else `$XDG_CONFIG_HOME/doppel/keys`, else `~/.config/doppel/keys`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOPPEL_KEYS") {
        return d.into();
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("doppel/keys")
}

/// The key in `dir`, creating it (and `host.pub`) when there is none. `true` when created.
/// A key file others can read is still used, with a warning: the signing key is what every
/// booth trusts.
pub fn load_or_create(dir: &Path) -> Result<(SigningKey, bool)> {
    let path = dir.join(SECRET);
    if path.is_file() {
        if let Some(mode) = loose_mode(&path) {
            tracing::warn!(
                "{} has mode {mode:o}: others can read the bundle signing key; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path).at("read", &path)?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::CorruptKey(path.clone()))?;
        return Ok((SigningKey::from_bytes(&seed), false));
    }
    create_private_dir(dir).at("create", dir)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    write_private(&path, &hex::encode(seed)).at("write", &path)?;
    let public = dir.join(PUBLIC);
    std::fs::write(&public, public_hex(&key) + "\n").at("write", &public)?;
    Ok((key, true))
}

pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().as_bytes())
}

/// The permission bits of `path` when group or others may read or write it.
pub fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// `dir` and its missing parents, the key folder itself only for its owner (0700) whatever the
/// umask says.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_folder_is_private_whatever_the_umask_and_a_loose_key_is_noticed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        // SAFETY: umask only sets the process's file-creation mask.
        let old = unsafe { libc::umask(0o022) };
        load_or_create(&keys).unwrap();
        unsafe { libc::umask(old) };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o700);
        assert_eq!(mode(&keys.join(SECRET)), 0o600);
        assert_eq!(loose_mode(&keys.join(SECRET)), None);
        std::fs::set_permissions(keys.join(SECRET), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert_eq!(loose_mode(&keys.join(SECRET)), Some(0o644));
        // Still usable: the warning says what to do.
        assert!(!load_or_create(&keys).unwrap().1);
    }

    #[test]
    fn a_key_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, created) = load_or_create(dir.path()).unwrap();
        assert!(created);
        let (k2, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        let public = std::fs::read_to_string(dir.path().join(PUBLIC)).unwrap();
        assert_eq!(public.trim(), public_hex(&k1));
        std::fs::write(dir.path().join(SECRET), "nonsense").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(Error::CorruptKey(_))
        ));
    }
}
