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
pub fn load_or_create(dir: &Path) -> Result<(SigningKey, bool)> {
    let path = dir.join(SECRET);
    if path.is_file() {
        let text = std::fs::read_to_string(&path).at("read", &path)?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::CorruptKey(path.clone()))?;
        return Ok((SigningKey::from_bytes(&seed), false));
    }
    std::fs::create_dir_all(dir).at("create", dir)?;
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
