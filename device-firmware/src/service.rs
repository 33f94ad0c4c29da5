//! Talking to the service manager (systemd, `Type=notify`): `READY=1` once the booth shows its
//! first frame (a picture or its camera-lost screen), `WATCHDOG=1` from the booth's workers at
//! half the watchdog interval (a task stuck for over 10 s silences them, `crate::parallel`, and
//! systemd restarts the booth),
//! and a `STATUS=` line for `systemctl status`. Without `$NOTIFY_SOCKET` (a shell, the tests)
//! every call does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// How often the status line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub struct ServiceManager {
    enabled: bool,
    ready: bool,
    ping_every: Option<Duration>,
    last_ping: Instant,
    last_status: Option<Instant>,
}

impl ServiceManager {
    pub fn from_env() -> Self {
        let mut usec = 0;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec);
        Self {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            ready: false,
            ping_every: watchdog
                .then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(100))),
            last_ping: Instant::now(),
            last_status: None,
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::warn!("cannot notify the service manager: {e}");
        }
    }

    /// A frame went to the display; `status` is asked for only when it is sent.
    pub fn frame_shown(&mut self, status: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        if !self.ready {
            self.ready = true;
            let line = status();
            self.send(&[NotifyState::Ready, NotifyState::Status(&line)]);
            self.last_status = Some(Instant::now());
            self.last_ping = Instant::now();
            return;
        }
        if self.last_status.is_none_or(|t| t.elapsed() >= STATUS_EVERY) {
            let line = status();
            self.send(&[NotifyState::Status(&line)]);
            self.last_status = Some(Instant::now());
        }
        self.alive();
    }

    /// The loop is turning (also while it waits for a frame).
    pub fn alive(&mut self) {
        let Some(every) = self.ping_every else {
            return;
        };
        // Before READY=1 the start timeout watches the booth, not the watchdog.
        if self.enabled && self.ready && self.last_ping.elapsed() >= every {
            self.send(&[NotifyState::Watchdog]);
            self.last_ping = Instant::now();
        }
    }

    /// The booth is stopping (SIGTERM or the end of its source).
    pub fn stopping(&self) {
        if self.enabled {
            self.send(&[NotifyState::Stopping]);
        }
    }
}
