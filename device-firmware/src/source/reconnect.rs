//! A camera that disappears (USB cable, power glitch) is reopened with exponential backoff; in
//! the meantime the booth shows a "camera lost" screen instead of freezing.

use std::time::{Duration, Instant};

use facekit::FrameSource;
use image::RgbImage;

type Opener = Box<dyn FnMut() -> facekit::Result<Box<dyn FrameSource + Send>> + Send>;

/// What the capture loop gets: a frame, or a note that the camera is gone for now.
pub enum Captured {
    Frame(RgbImage),
    Lost { retry_in: Duration, error: String },
    End,
}

pub struct Reconnecting {
    open: Opener,
    current: Option<Box<dyn FrameSource + Send>>,
    backoff: Duration,
    next_try: Instant,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub reconnects: u64,
}

impl Reconnecting {
    pub fn new(open: Opener) -> Self {
        Self {
            open,
            current: None,
            backoff: Duration::from_millis(250),
            next_try: Instant::now(),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            reconnects: 0,
        }
    }

    fn lost(&mut self, error: String) -> Captured {
        self.current = None;
        self.next_try = Instant::now() + self.backoff;
        let retry_in = self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        Captured::Lost { retry_in, error }
    }

    /// Never blocks longer than one capture; while lost, returns `Lost` until the next try.
    pub fn capture(&mut self) -> Captured {
        if self.current.is_none() {
            if Instant::now() < self.next_try {
                return Captured::Lost {
                    retry_in: self.next_try - Instant::now(),
                    error: "waiting to reconnect".into(),
                };
            }
            match (self.open)() {
                Ok(s) => {
                    self.current = Some(s);
                    self.reconnects += 1;
                }
                Err(e) => return self.lost(e.to_string()),
            }
        }
        match self.current.as_mut().expect("opened").next_frame() {
            Ok(Some(f)) => {
                self.backoff = self.min_backoff;
                Captured::Frame(f)
            }
            Ok(None) => Captured::End,
            Err(e) => self.lost(e.to_string()),
        }
    }
}
