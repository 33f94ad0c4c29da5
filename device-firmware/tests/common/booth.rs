//! The real `doppel-device run` as a child process on 127.0.0.1, with an HTTP client for its
//! console. Used by the update, console and browser tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Booth {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub state: PathBuf,
    pub log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// The trial window the tests' booths run with.
pub const TRIAL_SECONDS: u64 = 60;

/// How long a test waits for a trial to end: the booth's own window plus a margin, since under
/// qemu on a busy 2-core machine ten frames have taken 44 s (a fixed 30 s wait was flaky there).
pub fn trial_wait() -> Duration {
    Duration::from_secs(TRIAL_SECONDS + 30)
}

/// A booth config for tests: a short trial, the sample face detector.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("booth.toml");
    std::fs::write(
        &path,
        format!(
            "[button]\nkeyboard = false\n[console]\ntrial_frames = 10\ntrial_seconds = {TRIAL_SECONDS}\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

/// The booth binary as a command line: under `cross/build-aarch64.sh --test` the tests are
/// aarch64 programs in qemu-aarch64-static, and so is the booth they start (this machine cannot
/// exec an aarch64 binary by itself); `DOPPEL_DEVICE_WRAPPER` names the emulator then.
pub fn device_program() -> Vec<std::ffi::OsString> {
    let mut program = Vec::new();
    if let Some(wrapper) = std::env::var_os("DOPPEL_DEVICE_WRAPPER") {
        program.push(wrapper);
    }
    program.push(env!("CARGO_BIN_EXE_doppel-device").into());
    program
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        // The booth closes a connection that sends no request headers within its header
        // timeout (1 s at the least), idle keep-alive ones included; a pooled connection reused
        // just as it does so fails with "Peer disconnected" (seen under qemu after a bundle took
        // ~10 s to build). Polls every 200 ms still reuse their connection.
        .max_idle_age(Duration::from_millis(500))
        .build()
        .into()
}

impl Booth {
    /// Starts the booth on the looping sample video with `state` as its state folder; waits
    /// for the console line (or the process's end, which is returned as `Err` with its log).
    pub fn start(state: &Path, config: &Path, env: &[(&str, &str)]) -> Result<Booth, String> {
        let program = device_program();
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..])
            .current_dir(super::root())
            .args(["run", "--input", "data/carphone_pristine.mp4", "--loop"])
            .arg("--state-dir")
            .arg(state)
            .arg("--config")
            .arg(config)
            .args(["--http", "127.0.0.1:0", "--threads", "1", "--trust"])
            .arg(super::key_hex())
            .env("RUST_LOG", "info")
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting doppel-device");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("operator console: http://") {
                        let addr = rest.split('/').next().unwrap_or_default().to_owned();
                        let _ = tx.send(addr);
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().unwrap().clone());
            }
        };
        let token = std::fs::read_to_string(state.join("operator.token"))
            .unwrap()
            .trim()
            .to_owned();
        Ok(Booth {
            child,
            url: format!("http://{addr}"),
            token,
            state: state.to_path_buf(),
            log,
            agent: agent(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        let mut r = r.expect("the booth answers");
        let status = r.status().as_u16();
        let body = r.body_mut().read_json::<Value>().unwrap_or(Value::Null);
        (status, body)
    }

    /// GET with the token (`None`: without).
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.agent.get(&format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Self::answer(req.call())
    }

    pub fn post(&self, path: &str, body: &[u8], token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Self::answer(req.send(body))
    }

    /// The status, or `None` when the booth turned the request away.
    pub fn try_status(&self) -> Option<Value> {
        let mut r = self
            .agent
            .get(&format!("{}/api/status", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .ok()?;
        (r.status().as_u16() == 200).then_some(())?;
        r.body_mut().read_json().ok()
    }

    pub fn status(&self) -> Value {
        let (code, s) = self.get("/api/status", Some(&self.token));
        assert_eq!(code, 200, "{s}");
        s
    }

    /// Uploads the bundle folder as an archive (what `host-trainer deploy` sends).
    pub fn upload(&self, bundle: &Path) -> (u16, Value) {
        let archive = shared_proto::archive::pack(bundle).unwrap();
        let r = self
            .agent
            .post(&format!("{}/api/bundles", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/x-tar")
            .send(&archive[..]);
        Self::answer(r)
    }

    /// [`Booth::upload`] to a booth that may die while answering.
    pub fn try_upload(&self, bundle: &Path) -> Option<(u16, Value)> {
        let archive = shared_proto::archive::pack(bundle).unwrap();
        let mut r = self
            .agent
            .post(&format!("{}/api/bundles", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send(&archive[..])
            .ok()?;
        Some((r.status().as_u16(), r.body_mut().read_json().ok()?))
    }

    pub fn try_activate(&self, serial: u64) -> Option<u16> {
        let r = self
            .agent
            .post(&format!("{}/api/bundles/{serial}/activate", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send("{}")
            .ok()?;
        Some(r.status().as_u16())
    }

    pub fn activate(&self, serial: u64) -> (u16, Value) {
        self.post(
            &format!("/api/bundles/{serial}/activate"),
            b"{}",
            Some(&self.token),
        )
    }

    /// Waits until `check` holds on the status; panics with the last status and the log.
    pub fn wait_for(&self, what: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let s = self.status();
            if check(&s) {
                return s;
            }
            if t.elapsed() > within {
                panic!(
                    "{what}: not within {within:?}\nstatus: {s:#}\nlog:\n{}",
                    self.log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Uploads, activates and waits for the trial to pass.
    pub fn deploy(&self, bundle: &Path) -> u64 {
        let (code, body) = self.upload(bundle);
        assert_eq!(code, 201, "upload: {body}");
        let serial = body["serial"].as_u64().unwrap();
        let (code, body) = self.activate(serial);
        assert_eq!(code, 202, "activate: {body}");
        self.wait_for("trial passes", trial_wait(), |s| {
            s["serving"]["current"].as_u64() == Some(serial) && s["serving"]["trial"].is_null()
        });
        serial
    }

    /// Waits for the process to end by itself (a failpoint); returns its signal, if any.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.signal();
            }
            assert!(t.elapsed() < within, "the booth did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Booth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped, so a failing test leaves no booth running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
