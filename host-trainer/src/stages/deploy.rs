//! Deploy: a bundle folder to a booth's update API. The bundle goes up as one tar archive
//! (`shared_proto::archive`), the booth verifies and keeps it, then it is activated on trial and
//! this stage waits for the booth's verdict: confirmed after its clean frames, or rolled back
//! (self-test, a NaN, an error, too slow). Nothing here decides what the booth accepts; the
//! booth checks everything itself.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use shared_proto::archive;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("packing the bundle {}: {source}", path.display())]
    Pack {
        path: PathBuf,
        source: archive::ArchiveError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{url}: {source}")]
    Http { url: String, source: ureq::Error },
    #[error(
        "{url}: the booth refused the token (401); use the booth's <state-dir>/operator.token"
    )]
    Unauthorised { url: String },
    #[error("{url}: {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: no verdict on bundle {serial} within {waited:?}")]
    NoVerdict {
        url: String,
        serial: u64,
        waited: Duration,
    },
    #[error("{}: {detail}", path.display())]
    Fleet { path: PathBuf, detail: String },
}

/// One booth: where its console listens and its operator token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Booth {
    pub name: String,
    pub url: String,
    pub token_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    booth: Vec<Booth>,
}

/// Reads `booths.toml`: `[[booth]]` tables with `name`, `url`, `token_file` (relative to the
/// file's folder).
pub fn read_fleet(path: &Path) -> Result<Vec<Booth>, DeployError> {
    let text = std::fs::read_to_string(path).map_err(|source| DeployError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let fleet: FleetFile = toml::from_str(&text).map_err(|e| DeployError::Fleet {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if fleet.booth.is_empty() {
        return Err(DeployError::Fleet {
            path: path.to_path_buf(),
            detail: "no [[booth]] entries".into(),
        });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(fleet
        .booth
        .into_iter()
        .map(|b| Booth {
            token_file: base.join(&b.token_file),
            ..b
        })
        .collect())
}

pub fn read_token(path: &Path) -> Result<String, DeployError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|source| DeployError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// What the booth decided about the bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It passed its trial and serves.
    Confirmed,
    /// It was activated and then rolled back; the reason is the booth's.
    RolledBack(String),
}

#[derive(Debug, Clone)]
pub struct DeployReport {
    pub serial: u64,
    pub bytes: u64,
    pub verdict: Verdict,
    /// The booth's `GET /api/status` after the verdict.
    pub status: Value,
}

/// A bundle packed once, for one or many booths.
pub struct Packed {
    pub bytes: Vec<u8>,
}

pub fn pack(bundle: &Path) -> Result<Packed, DeployError> {
    archive::pack(bundle)
        .map(|bytes| Packed { bytes })
        .map_err(|source| DeployError::Pack {
            path: bundle.to_path_buf(),
            source,
        })
}

/// A reader that reports how far it has been read.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(900)))
        // The booth closes idle connections after its header timeout (1 s at the least); reusing
        // one as it closes loses the request, so only connections idle < 0.5 s are reused.
        .max_idle_age(Duration::from_millis(500))
        .build()
        .into()
}

struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn answer(
        &self,
        path: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, DeployError> {
        let url = self.url(path);
        let mut r = r.map_err(|source| DeployError::Http {
            url: url.clone(),
            source,
        })?;
        let status = r.status().as_u16();
        let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(body),
            401 => Err(DeployError::Unauthorised { url }),
            _ => Err(DeployError::Refused {
                url,
                status,
                message: body["error"]
                    .as_str()
                    .unwrap_or("no reason given")
                    .to_owned(),
            }),
        }
    }

    fn get(&self, path: &str) -> Result<Value, DeployError> {
        let r = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.answer(path, r)
    }

    fn post(&self, path: &str) -> Result<Value, DeployError> {
        let r = self
            .agent
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send("{}");
        self.answer(path, r)
    }
}

/// The booth's status (`GET /api/status`).
pub fn status(url: &str, token: &str) -> Result<Value, DeployError> {
    client(url, token).get("/api/status")
}

fn client(url: &str, token: &str) -> Client {
    Client {
        agent: agent(),
        base: url.trim_end_matches('/').to_owned(),
        token: token.to_owned(),
    }
}

/// Uploads `packed` to the booth at `url`, activates it and waits (at most `wait`) for the
/// trial's verdict. `progress` hears the bytes sent so far.
pub fn deploy(
    packed: &Packed,
    url: &str,
    token: &str,
    wait: Duration,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<DeployReport, DeployError> {
    let c = client(url, token);
    // The token and the address first: a booth refuses an upload before reading it, which a
    // client still sending megabytes sees only as a broken pipe.
    c.get("/api/status")?;
    let mut body = Counting {
        inner: packed.bytes.as_slice(),
        done: 0,
        progress,
    };
    let r = c
        .agent
        .post(&c.url("/api/bundles"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/x-tar")
        .header("Content-Length", &packed.bytes.len().to_string())
        .send(ureq::SendBody::from_reader(&mut body));
    let kept = c.answer("/api/bundles", r)?;
    let serial = kept["serial"].as_u64().unwrap_or_default();
    let verdict = match c.post(&format!("/api/bundles/{serial}/activate")) {
        Ok(_) => wait_for_verdict(&c, serial, wait)?,
        // A bundle that fails its self-test is rolled back at once: a verdict, not a failure
        // of the deploy itself.
        Err(DeployError::Refused {
            status: 422,
            message,
            ..
        }) => Verdict::RolledBack(message),
        Err(e) => return Err(e),
    };
    Ok(DeployReport {
        serial,
        bytes: packed.bytes.len() as u64,
        verdict,
        status: c.get("/api/status")?,
    })
}

fn wait_for_verdict(c: &Client, serial: u64, wait: Duration) -> Result<Verdict, DeployError> {
    let started = Instant::now();
    loop {
        let s = c.get("/api/status")?;
        let serving = &s["serving"];
        // The booth's trial watch and its record end a moment apart: wait for both.
        let on_trial = s["trial"]["serial"].as_u64() == Some(serial)
            || serving["trial"]["serial"].as_u64() == Some(serial);
        if !on_trial {
            if serving["current"].as_u64() == Some(serial) {
                return Ok(Verdict::Confirmed);
            }
            let why = serving["history"]
                .as_array()
                .and_then(|h| {
                    h.iter()
                        .rev()
                        .find(|e| e["serial"].as_u64() == Some(serial))
                        .and_then(|e| e["what"].as_str())
                })
                .unwrap_or("rolled back")
                .to_owned();
            return Ok(Verdict::RolledBack(why));
        }
        if started.elapsed() > wait {
            return Err(DeployError::NoVerdict {
                url: c.base.clone(),
                serial,
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
