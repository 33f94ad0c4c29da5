//! Drawing onto RGB frames with `embedded-graphics`: one `DrawTarget` over `image::RgbImage`
//! serves the host's contact sheets and the device's overlays and displays alike.

use crate::Detection;
use embedded_graphics::mono_font::{ascii::FONT_6X10, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use image::RgbImage;

/// An `image::RgbImage` seen as an embedded-graphics display; pixels outside are clipped.
pub struct RgbCanvas<'a>(pub &'a mut RgbImage);

impl OriginDimensions for RgbCanvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for RgbCanvas<'_> {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// Landmark colours, in landmark order: eyes cyan/yellow, nose magenta, mouth green/blue.
const LANDMARK_COLOURS: [Rgb888; 5] = [
    Rgb888::CSS_CYAN,
    Rgb888::YELLOW,
    Rgb888::MAGENTA,
    Rgb888::GREEN,
    Rgb888::CSS_DODGER_BLUE,
];

/// Box (in `colour`), five landmarks and the score of one face.
pub fn draw_detection(canvas: &mut RgbCanvas<'_>, det: &Detection, colour: Rgb888) {
    let [x0, y0, x1, y1] = det.bbox;
    // Boxes are half-open in continuous coordinates; the last covered pixel is x1 - 1.
    let rect = Rectangle::with_corners(
        Point::new(x0.round() as i32, y0.round() as i32),
        Point::new(x1.round() as i32 - 1, y1.round() as i32 - 1),
    );
    let _ = rect
        .into_styled(PrimitiveStyle::with_stroke(colour, 1))
        .draw(canvas);
    for (p, colour) in det.landmarks.iter().zip(LANDMARK_COLOURS) {
        let _ = Circle::with_center(Point::new(p[0].round() as i32, p[1].round() as i32), 3)
            .into_styled(PrimitiveStyle::with_fill(colour))
            .draw(canvas);
    }
    label(
        canvas,
        &format!("{:.2}", det.score),
        Point::new(x0 as i32, y0 as i32 - 10),
    );
}

/// White text on a black box, readable on any background.
pub fn label(canvas: &mut RgbCanvas<'_>, text: &str, top_left: Point) {
    let style = MonoTextStyle::new(&FONT_6X10, Rgb888::WHITE);
    let top_left = Point::new(top_left.x.max(0), top_left.y.max(0));
    let t = Text::with_baseline(text, top_left, style, Baseline::Top);
    let _ = t
        .bounding_box()
        .into_styled(PrimitiveStyle::with_fill(Rgb888::BLACK))
        .draw(canvas);
    let _ = t.draw(canvas);
}

const SYNTHETIC: &str = "SYNTHETIC";
/// The label strip at native font size (FONT_10X20 plus padding).
const LABEL_W: u32 = 10 * SYNTHETIC.len() as u32 + 8;
const LABEL_H: u32 = 24;

/// Where [`synthetic_label`] puts the label: `(x, y, width, height)` in frame pixels. About a
/// third of the frame width, never below the native font size so small frames stay readable.
pub fn synthetic_label_rect(frame_width: u32) -> (u32, u32, u32, u32) {
    let scale = (frame_width as f32 / 3.0 / LABEL_W as f32).max(1.0);
    let margin = (frame_width / 80).max(2);
    (
        margin,
        margin,
        (LABEL_W as f32 * scale) as u32,
        (LABEL_H as f32 * scale) as u32,
    )
}

/// Burns the "SYNTHETIC" label into a frame: white text on red in the top-left corner. Every
/// swapped frame carries it.
pub fn synthetic_label(frame: &mut RgbImage) {
    use embedded_graphics::mono_font::ascii::FONT_10X20;
    thread_local! {
        /// The scaled strip of the last frame width: rendering and resizing it took ~0.4 ms
        /// of every 640-wide booth frame, and a booth sees one width.
        static SCALED: std::cell::RefCell<Option<(u32, RgbImage)>> = const { std::cell::RefCell::new(None) };
    }
    let (x, y, w, h) = synthetic_label_rect(frame.width());
    SCALED.with_borrow_mut(|cached| {
        if cached
            .as_ref()
            .is_none_or(|(width, _)| *width != frame.width())
        {
            let mut strip = RgbImage::from_pixel(LABEL_W, LABEL_H, image::Rgb([200, 0, 0]));
            let style = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
            let _ = Text::with_baseline(SYNTHETIC, Point::new(4, 2), style, Baseline::Top)
                .draw(&mut RgbCanvas(&mut strip));
            let strip = if (w, h) == (LABEL_W, LABEL_H) {
                strip
            } else {
                crate::resize(&strip, w, h)
            };
            *cached = Some((frame.width(), strip));
        }
        if let Some((_, strip)) = cached.as_ref() {
            image::imageops::replace(frame, strip, x as i64, y as i64);
        }
    });
}

/// Lays `tiles` out in a grid with `columns` columns on a dark background.
pub fn tile(tiles: &[RgbImage], columns: u32) -> RgbImage {
    let (tw, th) = tiles
        .iter()
        .fold((1, 1), |(w, h), t| (w.max(t.width()), h.max(t.height())));
    let n = tiles.len().max(1) as u32;
    let cols = columns.clamp(1, n);
    let rows = n.div_ceil(cols);
    let gap = 2;
    let mut sheet = RgbImage::from_pixel(
        cols * (tw + gap) + gap,
        rows * (th + gap) + gap,
        image::Rgb([40, 40, 40]),
    );
    for (i, t) in tiles.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(
            &mut sheet,
            t,
            (gap + c * (tw + gap)) as i64,
            (gap + r * (th + gap)) as i64,
        );
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_overlay_marks_box_edges_and_landmarks() {
        let mut img = RgbImage::new(64, 64);
        let det = Detection {
            bbox: [10.0, 20.0, 50.0, 60.0],
            score: 0.99,
            landmarks: [
                [20.0, 35.0],
                [40.0, 35.0],
                [30.0, 45.0],
                [22.0, 52.0],
                [38.0, 52.0],
            ],
        };
        draw_detection(&mut RgbCanvas(&mut img), &det, Rgb888::RED);
        assert_eq!(img.get_pixel(10, 40).0, [255, 0, 0], "left edge of the box");
        assert_eq!(
            img.get_pixel(30, 59).0,
            [255, 0, 0],
            "bottom edge of the box"
        );
        assert_eq!(img.get_pixel(30, 45).0, [255, 0, 255], "nose dot");
        assert_eq!(
            img.get_pixel(30, 30).0,
            [0, 0, 0],
            "inside of the box untouched"
        );
    }
}
