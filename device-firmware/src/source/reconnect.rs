//! A camera that disappears (USB cable, power glitch) is reopened with exponential backoff; in
//! the meantime the booth shows a "camera lost" screen instead of freezing.

use std::time::{Duration, Instant};

use facekit::FrameSource;
use image::RgbImage;

type Opener = Box<dyn FnMut() -> facekit::Result<Box<dyn FrameSource + Send>> + Send>;

/// What the capture loop gets: a frame, or a note that the camera is gone for now: why (the
/// last open or read error, so the lost screen keeps saying it) and whether that just happened.
pub enum Captured {
    Frame(RgbImage),
    Lost {
        retry_in: Duration,
        error: String,
        fresh: bool,
    },
    End,
}

pub struct Reconnecting {
    open: Opener,
    current: Option<Box<dyn FrameSource + Send>>,
    pub(crate) backoff: Duration,
    next_try: Instant,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub reconnects: u64,
    last_error: String,
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
            last_error: String::new(),
        }
    }

    fn lost(&mut self, error: String) -> Captured {
        self.current = None;
        self.next_try = Instant::now() + self.backoff;
        let retry_in = self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        self.last_error.clone_from(&error);
        Captured::Lost {
            retry_in,
            error,
            fresh: true,
        }
    }

    /// Never blocks longer than one capture; while lost, returns `Lost` until the next try.
    pub fn capture(&mut self) -> Captured {
        if self.current.is_none() {
            if Instant::now() < self.next_try {
                return Captured::Lost {
                    retry_in: self.next_try - Instant::now(),
                    error: self.last_error.clone(),
                    fresh: false,
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
        let Some(current) = self.current.as_mut() else {
            return self.lost("no source".into());
        };
        match current.next_frame() {
            Ok(Some(f)) => {
                self.backoff = self.min_backoff;
                Captured::Frame(f)
            }
            Ok(None) => Captured::End,
            Err(e) => self.lost(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A camera that delivers `frames` frames per connection, then fails (unplugged).
    struct Flaky {
        left: u32,
    }

    impl FrameSource for Flaky {
        fn size(&self) -> (u32, u32) {
            (4, 4)
        }
        fn next_frame(&mut self) -> facekit::Result<Option<RgbImage>> {
            if self.left == 0 {
                return Err(facekit::FacekitError::Inference("device unplugged".into()));
            }
            self.left -= 1;
            Ok(Some(RgbImage::new(4, 4)))
        }
    }

    #[test]
    fn a_lost_camera_is_reopened_with_growing_backoff_then_recovers() {
        let opens = Arc::new(AtomicU32::new(0));
        let counter = opens.clone();
        // The first two reopen attempts fail (still unplugged), the third succeeds.
        let mut cam = Reconnecting::new(Box::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n == 1 || n == 2 {
                Err(facekit::FacekitError::Inference("no such device".into()))
            } else {
                Ok(Box::new(Flaky { left: 2 }) as Box<dyn FrameSource + Send>)
            }
        }));
        cam.min_backoff = Duration::from_millis(5);
        cam.backoff = cam.min_backoff;
        cam.max_backoff = Duration::from_millis(20);
        assert!(matches!(cam.capture(), Captured::Frame(_)));
        assert!(matches!(cam.capture(), Captured::Frame(_)));
        let mut waits = Vec::new();
        let mut frames = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        while frames < 2 && Instant::now() < deadline {
            match cam.capture() {
                Captured::Frame(_) => frames += 1,
                Captured::Lost {
                    retry_in,
                    fresh: true,
                    ..
                } => waits.push(retry_in),
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        assert_eq!(frames, 2, "frames flow again after the camera returns");
        // Unplugged, then two failed opens: the wait doubles each time.
        assert_eq!(
            waits,
            [5, 10, 20].map(Duration::from_millis).to_vec(),
            "backoff doubles"
        );
        assert_eq!(opens.load(Ordering::SeqCst), 4);
    }
}
