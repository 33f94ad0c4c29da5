//! The mode button: a GPIO line read through the character device (feature `gpio`), debounced,
//! and a keyboard fallback (`m` + Enter) on a terminal. Both send [`Control`] events.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    NextMode,
    /// From the console.
    SetMode(crate::config::Mode),
    Quit,
}

/// Accepts a level change only after it has held for `hold`: contacts bounce for a few ms.
#[derive(Debug, Clone)]
pub struct Debouncer {
    stable: bool,
    candidate: bool,
    since: Instant,
    hold: Duration,
}

impl Debouncer {
    pub fn new(hold: Duration, now: Instant) -> Self {
        Self {
            stable: false,
            candidate: false,
            since: now,
            hold,
        }
    }

    /// Feeds one sample (`true` = pressed); returns `true` once per press.
    pub fn update(&mut self, pressed: bool, now: Instant) -> bool {
        if pressed != self.candidate {
            self.candidate = pressed;
            self.since = now;
        }
        if self.candidate != self.stable && now.duration_since(self.since) >= self.hold {
            self.stable = self.candidate;
            return self.stable;
        }
        false
    }
}

/// The mode button could not be started.
#[cfg(feature = "gpio")]
#[derive(Debug, thiserror::Error)]
pub enum ButtonError {
    #[error("{} line {line}: {cause}", chip.display())]
    Gpio {
        chip: std::path::PathBuf,
        line: u32,
        cause: linux_embedded_hal::gpio_cdev::Error,
    },
    #[error("cannot start the button thread: {0}")]
    Thread(std::io::Error),
}

/// Polls the GPIO line every 2 ms on its own thread.
#[cfg(feature = "gpio")]
pub fn spawn_gpio(
    cfg: &crate::config::ButtonConfig,
    tx: Sender<Control>,
) -> Result<(), ButtonError> {
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
    let failed = |cause| ButtonError::Gpio {
        chip: cfg.gpio_chip.clone(),
        line: cfg.line,
        cause,
    };
    let mut chip = Chip::new(&cfg.gpio_chip).map_err(failed)?;
    let handle = chip
        .get_line(cfg.line)
        .and_then(|l| l.request(LineRequestFlags::INPUT, 0, "doppel-button"))
        .map_err(failed)?;
    let (active_low, hold) = (cfg.active_low, Duration::from_millis(cfg.debounce_ms));
    std::thread::Builder::new()
        .name("button".into())
        .spawn(move || {
            let mut d = Debouncer::new(hold, Instant::now());
            loop {
                let Ok(level) = handle.get_value().map(|v| v != 0) else {
                    tracing::error!("mode button: GPIO read failed; button disabled");
                    return;
                };
                if d.update(level != active_low, Instant::now())
                    && tx.send(Control::NextMode).is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .map_err(ButtonError::Thread)?;
    Ok(())
}

/// `m` + Enter switches mode, `q` + Enter quits; only when stdin is a terminal.
pub fn spawn_keyboard(tx: Sender<Control>) {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("keyboard".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                let event = match line.trim() {
                    "m" | "" => Control::NextMode,
                    "q" => Control::Quit,
                    _ => continue,
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_shorter_than_the_hold_are_ignored_and_one_press_fires_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Debouncer::new(Duration::from_millis(30), t0);
        // Contact bounce: on/off every 5 ms for 20 ms.
        let mut fired = 0;
        for i in 0..4 {
            fired += d.update(i % 2 == 0, ms(5 * i)) as u32;
        }
        assert_eq!(fired, 0);
        // Held down from 20 ms: fires once at 50 ms, not again while held.
        for t in (20..120).step_by(2) {
            fired += d.update(true, ms(t)) as u32;
        }
        assert_eq!(fired, 1);
        // Release, then a second press.
        for t in (120..200).step_by(2) {
            fired += d.update(false, ms(t)) as u32;
        }
        for t in (200..260).step_by(2) {
            fired += d.update(true, ms(t)) as u32;
        }
        assert_eq!(fired, 2);
    }
}
