//! What the booth draws over each frame, all through `embedded-graphics` on the frame itself:
//! the face box and landmarks, the fake-score bar with its verdict and the hand-made forensic cues above it,
//! a status line (mode, FPS, latency, model version) and, whenever the booth can swap faces, the
//! burned-in "SYNTHETIC" label last so nothing can cover it.

use embedded_graphics::mono_font::{ascii::FONT_6X10, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use facekit::draw::{draw_detection, label, synthetic_label, RgbCanvas};
use facekit::Detection;
use image::RgbImage;

use crate::config::Mode;
use crate::pipeline::BoothCues;

/// Everything the overlay shows for one frame.
#[derive(Debug, Clone, Default)]
pub struct Hud {
    pub mode: Option<Mode>,
    pub fps: f32,
    pub latency_ms: f32,
    pub model: String,
    /// Smoothed fake probability of the face, and the threshold of the verdict.
    pub score: Option<(f32, f32)>,
    /// The hand-made forensic cues next to the score (≈1 on an untouched face, higher when blended in).
    pub cues: Option<BoothCues>,
    pub face: Option<Detection>,
    /// A problem the operator should see (failed inference, no detector in the bundle).
    pub warning: Option<String>,
    /// Burn the "SYNTHETIC" label: a swapping mode with a swap model loaded. Every such frame
    /// carries it, a frame without a face too, so the label does not flicker with detection;
    /// with no swap model nothing on screen is synthetic and a label would tell the visitor
    /// that their own face is a fake.
    pub synthetic: bool,
}

const BAR_H: u32 = 12;
const FAKE_COLOUR: Rgb888 = Rgb888::new(220, 30, 30);
const REAL_COLOUR: Rgb888 = Rgb888::new(30, 180, 60);

/// Where the score bar goes: `(x, y, width, height)`, above the status line.
pub fn score_bar_rect(width: u32, height: u32) -> (u32, u32, u32, u32) {
    let margin = 4;
    (
        margin,
        height.saturating_sub(2 * BAR_H + 2 * margin),
        width.saturating_sub(2 * margin),
        BAR_H,
    )
}

pub fn draw(frame: &mut RgbImage, hud: &Hud) {
    let (w, h) = frame.dimensions();
    {
        let mut canvas = RgbCanvas(frame);
        let fake = hud.score.map(|(score, threshold)| score >= threshold);
        if let (Some(face), Some(mode)) = (&hud.face, hud.mode) {
            // A swap replaces the face and needs no box; with no swap model ("showing faces
            // only") the box is what shows the booth found the visitor.
            if mode.scores() || !hud.synthetic {
                // The box says the verdict too: a visitor sees it around their own face.
                let colour = match fake {
                    Some(true) => FAKE_COLOUR,
                    Some(false) => REAL_COLOUR,
                    None => Rgb888::WHITE,
                };
                draw_detection(&mut canvas, face, colour);
            }
        }
        if let (Some((score, threshold)), Some(fake)) = (hud.score, fake) {
            let (x, y, bw, bh) = score_bar_rect(w, h);
            let _ = Rectangle::new(Point::new(x as i32, y as i32), Size::new(bw, bh))
                .into_styled(PrimitiveStyle::with_fill(Rgb888::new(40, 40, 40)))
                .draw(&mut canvas);
            let filled = (score.clamp(0.0, 1.0) * bw as f32).round() as u32;
            let colour = if fake { FAKE_COLOUR } else { REAL_COLOUR };
            let _ = Rectangle::new(Point::new(x as i32, y as i32), Size::new(filled, bh))
                .into_styled(PrimitiveStyle::with_fill(colour))
                .draw(&mut canvas);
            let tick = x + (threshold.clamp(0.0, 1.0) * bw as f32) as u32;
            let _ = Rectangle::new(Point::new(tick as i32, y as i32), Size::new(1, bh))
                .into_styled(PrimitiveStyle::with_fill(Rgb888::WHITE))
                .draw(&mut canvas);
            let verdict = format!(
                "{} {score:.2} (threshold {threshold:.2})",
                if fake { "FAKE" } else { "REAL" }
            );
            let style = MonoTextStyle::new(&FONT_6X10, Rgb888::WHITE);
            let _ = Text::with_baseline(
                &verdict,
                Point::new(x as i32 + 2, y as i32 + 1),
                style,
                Baseline::Top,
            )
            .draw(&mut canvas);
        }
        let status = format!(
            "{} | {:.1} fps | {:.0} ms | {}",
            hud.mode.map_or("-", |m| m.name()),
            hud.fps,
            hud.latency_ms,
            if hud.model.is_empty() {
                "no bundle"
            } else {
                &hud.model
            }
        );
        label(
            &mut canvas,
            &status,
            Point::new(4, h as i32 - BAR_H as i32 - 2),
        );
        // Above the score bar, clear of the face and of the SYNTHETIC label: the cues, then
        // any warning above them.
        let mut y = score_bar_rect(w, h).1 as i32 - 12;
        if let Some(c) = &hud.cues {
            let mut text = format!(
                "blur {:.1} edge {:.1} seam {:.1} mouth {:.1}",
                c.cues.over_blur, c.cues.edge_colour, c.cues.double_edges, c.cues.mouth_blur
            );
            if let Some(f) = c.flicker {
                text += &format!(" flicker {f:.1}");
            }
            label(&mut canvas, &text, Point::new(4, y));
            y -= 12;
        }
        if let Some(warning) = &hud.warning {
            label(&mut canvas, warning, Point::new(4, y));
        }
    }
    if hud.synthetic {
        synthetic_label(frame);
    }
}

/// Shown while the camera is gone: dark screen, what happened, when the next try is.
pub fn camera_lost(width: u32, height: u32, message: &str) -> RgbImage {
    status_screen(width, height, "camera lost", message)
}

/// A dark screen with a title and `message` wrapped to the width: what the booth shows when it
/// has no picture (camera lost, settings to fix).
pub fn status_screen(width: u32, height: u32, title: &str, message: &str) -> RgbImage {
    let mut frame = RgbImage::from_pixel(width, height, image::Rgb([16, 16, 24]));
    let mut canvas = RgbCanvas(&mut frame);
    let columns = (width / 6).max(1) as usize;
    let title_x = width as i32 / 2 - (title.chars().count() as i32 * 6) / 2;
    label(
        &mut canvas,
        title,
        Point::new(title_x.max(4), height as i32 / 3),
    );
    let mut y = height as i32 / 3 + 20;
    for line in message.lines().flat_map(|l| {
        let chars: Vec<char> = l.chars().collect();
        chars
            .chunks(columns)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
    }) {
        if y > height as i32 - 12 {
            break;
        }
        label(&mut canvas, &line, Point::new(4, y));
        y += 14;
    }
    frame
}
