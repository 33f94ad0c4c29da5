//! `detect --review`: the scored video slowed down, each frame beside its aligned face with the
//! score and the cues drawn where they look, so an operator can step through a clip and see why
//! it was called fake or real.
//!
//! Layout (720×400): the frame with the face box (left); the detector's crop at 2× with the
//! face-boundary band (where skin-tone steps and double edges show) and the mouth box, each
//! coloured by how far its cue stands out from the clip so far (right); the numbers; and the
//! score over the whole clip with a cursor (bottom). Frames without a face say so: a hand over
//! the face or a turn away often shows as a lost face or a flicker spike just before.

use std::path::Path;

use embedded_graphics::mono_font::{ascii::FONT_6X10, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Ellipse, Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use facekit::draw::RgbCanvas;
use facekit::forensics::{boundary_band, face_ellipse, mouth_box, Cues};
use facekit::{AlignedFace, VideoWriter};
use image::{imageops, RgbImage};

use crate::error::{AtPath, Result};

const W: u32 = 720;
const H: u32 = 400;
/// Left panel (the frame) and right panel (the crop at 2×).
const FRAME_BOX: (u32, u32) = (400, 300);
const CROP_X: i32 = 440;
const CROP_SCALE: f32 = 2.0;
/// The score strip at the bottom.
const STRIP: (i32, i32, u32, u32) = (10, 340, 700, 50);

/// Running mean and variance (Welford) of one cue over the clip so far.
#[derive(Default, Clone, Copy)]
struct Running {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Running {
    /// How many standard deviations `v` sits above the clip so far (0 until there are five
    /// frames), then takes `v` in.
    fn stand_out(&mut self, v: f32) -> f64 {
        let v = v as f64;
        let z = if self.n >= 5.0 {
            let sd = (self.m2 / (self.n - 1.0))
                .sqrt()
                .max(1e-3 * self.mean.abs().max(1.0));
            (v - self.mean) / sd
        } else {
            0.0
        };
        self.n += 1.0;
        let d = v - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (v - self.mean);
        z
    }
}

/// Green when a cue is ordinary for this clip, orange from 1.5 sd above it, red from 2.5.
fn alarm(z: f64) -> Rgb888 {
    if z >= 2.5 {
        Rgb888::RED
    } else if z >= 1.5 {
        Rgb888::new(255, 150, 0)
    } else {
        Rgb888::GREEN
    }
}

/// One scored frame as the review draws it.
pub struct Scored<'a> {
    pub index: u64,
    pub bbox: [f32; 4],
    pub aligned: &'a AlignedFace,
    /// With the bundle's blur check, when it has one.
    pub score: f32,
    /// The network's score alone.
    pub network: f32,
    pub smoothed: f32,
    pub cues: Cues,
    pub flicker: Option<f32>,
    /// The bundle's blur check alone calls this face fake (softer than real faces are).
    pub blur_alarm: bool,
}

pub struct ReviewWriter {
    writer: VideoWriter,
    /// Frames in the clip (for the strip's time axis); grows if the hint was short.
    total: u64,
    threshold: f32,
    /// `(frame, smoothed score)` of every scored frame so far.
    history: Vec<(u64, f32)>,
    /// Over-blur, edge colour, double edges, mouth blur, flicker.
    running: [Running; 5],
}

impl ReviewWriter {
    /// A review video at `path`, `slowdown` times slower than the source's `fps`.
    pub fn create(
        path: &Path,
        fps: f64,
        slowdown: f64,
        total: u64,
        threshold: f32,
    ) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at("create", dir)?;
        }
        let writer = VideoWriter::create(path, W, H, (fps / slowdown.max(1.0)).max(1.0))?;
        Ok(Self {
            writer,
            total: total.max(1),
            threshold,
            history: Vec::new(),
            running: [Running::default(); 5],
        })
    }

    /// A frame where no face was scored.
    pub fn no_face(&mut self, frame: &RgbImage, index: u64) -> Result<()> {
        let mut page = self.page(frame, index, None);
        let mut c = RgbCanvas(&mut page);
        text(
            &mut c,
            "NO FACE FOUND: occluded (a hand?), turned away or out of frame",
            Point::new(10, 306),
            Rgb888::new(255, 150, 0),
        );
        self.writer.write(&page)?;
        Ok(())
    }

    pub fn scored(&mut self, frame: &RgbImage, s: &Scored<'_>) -> Result<()> {
        self.history.push((s.index, s.smoothed));
        let z = [
            self.running[0].stand_out(s.cues.over_blur),
            self.running[1].stand_out(s.cues.edge_colour),
            self.running[2].stand_out(s.cues.double_edges),
            self.running[3].stand_out(s.cues.mouth_blur),
            s.flicker.map_or(0.0, |f| self.running[4].stand_out(f)),
        ];
        let fake = s.smoothed >= self.threshold;
        let verdict_colour = if fake { Rgb888::RED } else { Rgb888::GREEN };
        let mut page = self.page(frame, s.index, Some((s.bbox, verdict_colour)));
        let crop = imageops::resize(
            &s.aligned.image,
            (s.aligned.image.width() as f32 * CROP_SCALE) as u32,
            (s.aligned.image.height() as f32 * CROP_SCALE) as u32,
            imageops::FilterType::Nearest,
        );
        imageops::replace(&mut page, &crop, CROP_X as i64, 10);
        let mut c = RgbCanvas(&mut page);
        let at = |x: f32, y: f32| {
            Point::new(
                CROP_X + (x * CROP_SCALE).round() as i32,
                10 + (y * CROP_SCALE).round() as i32,
            )
        };
        // The face-boundary band the edge-colour and double-edge cues read.
        let lm = &s.aligned.landmarks;
        let (cx, cy, ax, ay) = face_ellipse(lm);
        let band = boundary_band(s.aligned.image.width()) as f32;
        let seam = alarm(z[1].max(z[2]));
        for grow in [-band, band] {
            let size = Size::new(
                (2.0 * (ax + grow) * CROP_SCALE).max(1.0) as u32,
                (2.0 * (ay + grow) * CROP_SCALE).max(1.0) as u32,
            );
            let _ = Ellipse::with_center(at(cx, cy), size)
                .into_styled(PrimitiveStyle::with_stroke(seam, 1))
                .draw(&mut c);
        }
        // The mouth box of the mouth-blur cue.
        let ([mx, my], half_w, half_h) = mouth_box(lm);
        let _ = Rectangle::with_corners(at(mx - half_w, my - half_h), at(mx + half_w, my + half_h))
            .into_styled(PrimitiveStyle::with_stroke(alarm(z[3]), 1))
            .draw(&mut c);

        let verdict = if fake { "FAKE" } else { "REAL" };
        text(
            &mut c,
            &format!(
                "score {:.2} (network {:.2})  smoothed {:.2}  threshold {:.2}  -> {verdict}",
                s.score, s.network, s.smoothed, self.threshold
            ),
            Point::new(10, 306),
            verdict_colour,
        );
        let cue = |name: &str, v: f32, z: f64| (format!("{name} {v:.2}"), alarm(z));
        let mut x = 10;
        for (label, colour) in [
            if s.blur_alarm {
                (format!("over-blur {:.2}", s.cues.over_blur), Rgb888::RED)
            } else {
                cue("over-blur", s.cues.over_blur, z[0])
            },
            cue("edge colour", s.cues.edge_colour, z[1]),
            cue("double edges", s.cues.double_edges, z[2]),
            cue("mouth blur", s.cues.mouth_blur, z[3]),
            match s.flicker {
                Some(f) => cue("flicker", f, z[4]),
                None => ("flicker -".to_owned(), Rgb888::GREEN),
            },
        ] {
            text(&mut c, &label, Point::new(x, 322), colour);
            x += 6 * label.len() as i32 + 14;
        }
        if z[4] >= 2.5 {
            text(
                &mut c,
                "FLICKER SPIKE: the face changed more than its surround (occlusion, seam)",
                Point::new(10, 290),
                Rgb888::RED,
            );
        }
        if s.blur_alarm {
            // Under the frame counter, on the page's dark ground rather than over the frame.
            text(
                &mut c,
                "BLUR CHECK: softer than real faces",
                Point::new(CROP_X, 294),
                Rgb888::RED,
            );
        }
        self.writer.write(&page)?;
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        Ok(self.writer.finish()?)
    }

    /// The frame (left, with its face box in the verdict's colour), the frame counter and the
    /// score strip.
    fn page(&mut self, frame: &RgbImage, index: u64, face: Option<([f32; 4], Rgb888)>) -> RgbImage {
        self.total = self.total.max(index + 1);
        let mut page = RgbImage::from_pixel(W, H, image::Rgb([24, 24, 24]));
        let (fw, fh) = frame.dimensions();
        let scale = (FRAME_BOX.0 as f32 / fw as f32).min(FRAME_BOX.1 as f32 / fh as f32);
        let (sw, sh) = (
            ((fw as f32 * scale) as u32).max(1),
            ((fh as f32 * scale) as u32).max(1),
        );
        let shown = imageops::resize(frame, sw, sh, imageops::FilterType::Triangle);
        imageops::replace(&mut page, &shown, 10, 0);
        let mut c = RgbCanvas(&mut page);
        if let Some(([x0, y0, x1, y1], colour)) = face {
            let p = |x: f32, y: f32| Point::new(10 + (x * scale) as i32, (y * scale) as i32);
            let _ = Rectangle::with_corners(p(x0, y0), p(x1, y1))
                .into_styled(PrimitiveStyle::with_stroke(colour, 1))
                .draw(&mut c);
        }
        text(
            &mut c,
            &format!("frame {index} of {}", self.total),
            Point::new(CROP_X, 280),
            Rgb888::WHITE,
        );
        // The score over the clip: a column per scored frame, the threshold, a cursor.
        let (sx, sy, sw, sh) = STRIP;
        let _ = Rectangle::new(Point::new(sx, sy), Size::new(sw, sh))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::new(40, 40, 40)))
            .draw(&mut c);
        let x_of = |f: u64| sx + (f as f64 / self.total as f64 * sw as f64) as i32;
        let y_of = |v: f32| sy + sh as i32 - (v.clamp(0.0, 1.0) * sh as f32) as i32;
        for &(f, v) in &self.history {
            let colour = if v >= self.threshold {
                Rgb888::RED
            } else {
                Rgb888::GREEN
            };
            let _ = Line::new(
                Point::new(x_of(f), sy + sh as i32),
                Point::new(x_of(f), y_of(v)),
            )
            .into_styled(PrimitiveStyle::with_stroke(colour, 1))
            .draw(&mut c);
        }
        let _ = Line::new(
            Point::new(sx, y_of(self.threshold)),
            Point::new(sx + sw as i32, y_of(self.threshold)),
        )
        .into_styled(PrimitiveStyle::with_stroke(Rgb888::WHITE, 1))
        .draw(&mut c);
        let _ = Line::new(
            Point::new(x_of(index), sy - 4),
            Point::new(x_of(index), sy + sh as i32),
        )
        .into_styled(PrimitiveStyle::with_stroke(Rgb888::YELLOW, 1))
        .draw(&mut c);
        page
    }
}

fn text(c: &mut RgbCanvas<'_>, s: &str, at: Point, colour: Rgb888) {
    let _ =
        Text::with_baseline(s, at, MonoTextStyle::new(&FONT_6X10, colour), Baseline::Top).draw(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cue_stands_out_only_against_the_clip_so_far() {
        let mut r = Running::default();
        for v in [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0] {
            assert!(r.stand_out(v).abs() < 2.0);
        }
        assert!(r.stand_out(2.0) > 2.5);
        assert_eq!(alarm(3.0), Rgb888::RED);
        assert_eq!(alarm(0.0), Rgb888::GREEN);
    }
}
