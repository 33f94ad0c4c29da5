//! Plots with `plotters`, rendered into an RGB buffer and saved with `image`. Text uses the
//! DejaVu Sans font from Debian's fonts-dejavu-core (installed by `make setup`).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{AtPath, Error, Result};

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// A plotters failure inside a drawing, before the path it was drawing is known.
struct DrawFailed(String);

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let Some(bytes) = FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok()) else {
            return false;
        };
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| Error::NoFont(FONT_PATHS.join(", ")))
}

/// One named series of counts per bin.
pub struct Bars<'a> {
    pub label: &'a str,
    pub counts: Vec<u32>,
    pub colour: RGBColor,
}

/// Side-by-side histogram panels; each panel has its bin edges (ticks) and grouped series.
pub fn grouped_bars(path: &Path, panels: &[(&str, &[f32], Vec<Bars<'_>>)]) -> Result<()> {
    let (w, h) = (480 * panels.len() as u32, 360);
    render(path, (w, h), |root| {
        let areas = root.split_evenly((1, panels.len()));
        for (area, (title, edges, series)) in areas.iter().zip(panels) {
            let max = series
                .iter()
                .flat_map(|s| s.counts.iter().copied())
                .max()
                .unwrap_or(1)
                .max(1);
            let nb = edges.len() - 1;
            let mut chart = ChartBuilder::on(area)
                .caption(*title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(40)
                .build_cartesian_2d(0f32..nb as f32, 0u32..max + max / 10 + 1)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(nb + 1)
                // Ticks sit on bin edges, labelled with the edge value.
                .x_label_formatter(&|x| {
                    let i = x.round();
                    match edges.get(i as usize) {
                        Some(e) if (x - i).abs() < 0.01 && i >= 0.0 => format!("{e:+.0}"),
                        _ => String::new(),
                    }
                })
                .label_style(("sans-serif", 11))
                .y_desc("faces")
                .draw()
                .map_err(draw_err)?;
            let width = 0.8 / series.len().max(1) as f32;
            for (k, s) in series.iter().enumerate() {
                let colour = s.colour;
                chart
                    .draw_series(s.counts.iter().enumerate().map(move |(i, &c)| {
                        let x0 = i as f32 + 0.1 + k as f32 * width;
                        Rectangle::new([(x0, 0), (x0 + width, c)], colour.filled())
                    }))
                    .map_err(draw_err)?
                    .label(s.label)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                    });
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    })
}

/// Draws on a white `size` canvas with the font registered, then saves it as PNG.
fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), DrawFailed>,
) -> Result<()> {
    ensure_font()?;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let drawn = (|| {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)
    })();
    drawn.map_err(|DrawFailed(problem)| Error::Draw {
        path: path.to_path_buf(),
        problem,
    })?;
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::Draw {
        path: path.to_path_buf(),
        problem: "canvas size mismatch".into(),
    })?;
    img.save(path).at("write", path)
}

/// The series legend of every chart here: on a white box, at `at`.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> std::result::Result<(), DrawFailed>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(draw_err)
}

fn draw_err<E: std::fmt::Display>(e: E) -> DrawFailed {
    DrawFailed(e.to_string())
}

/// One named line series of `(x, y)` points.
pub struct Line<'a> {
    pub label: &'a str,
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
}

/// How a line chart's y axis runs.
#[derive(Clone, Copy)]
pub enum YAxis<'a> {
    /// Log-scaled over the positive values, e.g. loss curves (linear when they span less than
    /// a decade).
    Log(&'a str),
    /// Linear from 0 to 1, e.g. probabilities over time.
    Unit(&'a str),
    /// Linear from 0 to 1 against an x from 0 to 1: an ROC's true-positive rate. The legend goes
    /// bottom right, below the diagonal, where a detector's curves do not run.
    Rate(&'a str),
}

/// A line chart of `series` against `x_desc`, its y axis as `y` says.
pub fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y: YAxis<'_>,
    series: &[Line<'_>],
) -> Result<()> {
    render(path, (800, 420), |root| {
        let pts = || series.iter().flat_map(|s| s.points.iter().copied());
        let x_max = pts().map(|p| p.0).fold(1.0, f64::max);
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56);
        match y {
            YAxis::Log(y_desc) => {
                let y_min = pts()
                    .map(|p| p.1)
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .fold(f64::INFINITY, f64::min);
                let y_max = pts()
                    .map(|p| p.1)
                    .filter(|v| v.is_finite())
                    .fold(0.0, f64::max)
                    .max(y_min * 1.01);
                let y_min = if y_min.is_finite() { y_min * 0.9 } else { 1e-3 };
                let y_range = y_min..y_max * 1.1;
                // A log axis cannot show zero or negative values: leave them out.
                let positive = |v: f64| v > 0.0;
                let legend = SeriesLabelPosition::UpperRight;
                if y_range.end / y_range.start >= 10.0 {
                    let chart = builder
                        .build_cartesian_2d(0f64..x_max, y_range.log_scale())
                        .map_err(draw_err)?;
                    draw_lines(chart, x_desc, y_desc, series, positive, legend)
                } else {
                    // Within one decade a log axis has no power of ten to label: linear reads.
                    let chart = builder
                        .build_cartesian_2d(0f64..x_max, y_range)
                        .map_err(draw_err)?;
                    draw_lines(chart, x_desc, y_desc, series, positive, legend)
                }
            }
            YAxis::Unit(y_desc) | YAxis::Rate(y_desc) => {
                let chart = builder
                    .build_cartesian_2d(0f64..x_max, 0f64..1f64)
                    .map_err(draw_err)?;
                let legend = match y {
                    YAxis::Rate(_) => SeriesLabelPosition::LowerRight,
                    _ => SeriesLabelPosition::UpperRight,
                };
                draw_lines(chart, x_desc, y_desc, series, |_| true, legend)
            }
        }
    })
}

fn draw_lines<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    series: &[Line<'_>],
    shown: impl Fn(f64) -> bool + Copy,
    legend: SeriesLabelPosition,
) -> std::result::Result<(), DrawFailed>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(draw_err)?;
    for s in series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(
                s.points
                    .iter()
                    .copied()
                    .filter(move |p| p.1.is_finite() && shown(p.1)),
                colour.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
    }
    draw_legend(&mut chart, legend)
}
