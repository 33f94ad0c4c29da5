use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Bumped whenever a type in this crate changes its encoding.
/// 2: bundle model entries carry their own crop spec (detectors crop wider than swap models).
/// 3: detector entries carry their calibrated threshold.
/// 4: manifests carry a monotonic `serial` (booths refuse an older one); the serving record.
/// 5: detector entries carry their blur check.
/// 6: swap entries carry the identity distance at which a visitor is someone else.
pub const FORMAT_VERSION: u16 = 6;
/// Leading bytes of every encoded envelope, so a random file is told apart from an old version.
pub const MAGIC: [u8; 4] = *b"DPL\0";

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("not a doppel message (bad magic bytes)")]
    BadMagic,
    #[error("format version {found} is not supported (this build reads version {supported}); update the reader or re-export with a matching host-trainer")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("message kind is {found:?}, expected {expected:?}")]
    WrongKind { found: String, expected: String },
    #[error("corrupt or truncated message: {0}")]
    Postcard(#[from] postcard::Error),
}

/// Header written before every payload. The header itself never changes layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub magic: [u8; 4],
    pub version: u16,
    /// Name of the payload type, so a manifest is never decoded as a telemetry message.
    pub kind: String,
}

/// Encode `value` with a header naming its `kind`.
pub fn encode<T: Serialize>(kind: &str, value: &T) -> Result<Vec<u8>, ProtoError> {
    let header = Envelope {
        magic: MAGIC,
        version: FORMAT_VERSION,
        kind: kind.to_owned(),
    };
    let mut out = postcard::to_stdvec(&header)?;
    out.extend(postcard::to_stdvec(value)?);
    Ok(out)
}

/// Decode a payload of `kind`, checking magic and version before touching the payload.
pub fn decode<T: DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T, ProtoError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(ProtoError::BadMagic);
    }
    let (header, rest): (Envelope, &[u8]) = postcard::take_from_bytes(bytes)?;
    if header.version != FORMAT_VERSION {
        return Err(ProtoError::UnsupportedVersion {
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    if header.kind != kind {
        return Err(ProtoError::WrongKind {
            found: header.kind,
            expected: kind.to_owned(),
        });
    }
    let (value, trailing) = postcard::take_from_bytes(rest)?;
    if !trailing.is_empty() {
        return Err(ProtoError::Postcard(
            postcard::Error::DeserializeBadEncoding,
        ));
    }
    Ok(value)
}
