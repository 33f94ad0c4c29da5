//! int8 calibration: the activation ranges of every layer, measured with tch on training faces.

use model_spec::graphs::SwapRanges;
use model_spec::onnx::{LayerRanges, Range};
use tch::{Device, Kind, Tensor};

use crate::model::net::{Autoencoder, LayerTrace};
use crate::person::Person;

/// How activation ranges are taken from calibration faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Calibration {
    MinMax,
    /// Clip to the given percentile (e.g. 99.99) of each tensor, symmetric in the tails.
    Percentile(f32),
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?}: use `minmax` or `pNN.NN` (e.g. p99.99)")]
pub struct BadCalibration(String);

impl std::str::FromStr for Calibration {
    type Err = BadCalibration;
    fn from_str(s: &str) -> Result<Self, BadCalibration> {
        if s == "minmax" {
            return Ok(Self::MinMax);
        }
        s.strip_prefix('p')
            .and_then(|p| p.parse::<f32>().ok())
            .filter(|p| (50.0..100.0).contains(p))
            .map(Self::Percentile)
            .ok_or_else(|| BadCalibration(s.to_owned()))
    }
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MinMax => write!(f, "minmax"),
            Self::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

fn range_of(t: &Tensor, calibration: Calibration) -> Range {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
    match calibration {
        Calibration::MinMax => Range {
            lo: f32::try_from(t.min()).unwrap_or(0.0),
            hi: f32::try_from(t.max()).unwrap_or(0.0),
        },
        Calibration::Percentile(p) => {
            let mut v = Vec::<f32>::try_from(&t).unwrap_or_default();
            if v.is_empty() {
                return Range { lo: 0.0, hi: 0.0 };
            }
            let n = v.len() - 1;
            let hi_i = ((p as f64 / 100.0) * n as f64).round() as usize;
            let lo_i = n - hi_i;
            let (_, hi, _) = v.select_nth_unstable_by(hi_i, f32::total_cmp);
            let hi = *hi;
            let (_, lo, _) = v.select_nth_unstable_by(lo_i, f32::total_cmp);
            Range { lo: *lo, hi }
        }
    }
}

fn trace_ranges(trace: &[LayerTrace], c: Calibration) -> Vec<LayerRanges> {
    trace
        .iter()
        .map(|t| LayerRanges {
            out: range_of(&t.out, c),
            conv: range_of(&t.conv, c),
            dw: t.dw.as_ref().map(|d| range_of(d, c)),
        })
        .collect()
}

/// Activation ranges of every encoder and decoder layer of the swap into `to` on `faces`.
pub fn calibrate(
    model: &Autoencoder,
    faces: &Tensor,
    to: Person,
    calibration: Calibration,
) -> SwapRanges {
    let _guard = tch::no_grad_guard();
    let enc = model.encoder.forward_trace(faces);
    let mut code = enc
        .last()
        .map_or_else(|| faces.shallow_clone(), |l| l.out.shallow_clone());
    if let Some(shift) = model.identity_shift(to.index()) {
        code += shift.to_device(code.device());
    }
    let dec = model.decoders[to.index()].forward_trace(&code);
    SwapRanges {
        // 8-bit pixels over 0..1: exact at scale 1/255.
        input: Range { lo: 0.0, hi: 1.0 },
        encoder: trace_ranges(&enc, calibration),
        code: range_of(&code, calibration),
        decoder: trace_ranges(&dec, calibration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_parses_minmax_and_percentiles_only() {
        assert_eq!("minmax".parse::<Calibration>(), Ok(Calibration::MinMax));
        assert_eq!(
            "p99.9".parse::<Calibration>(),
            Ok(Calibration::Percentile(99.9))
        );
        assert!("p101".parse::<Calibration>().is_err());
        assert!("max".parse::<Calibration>().is_err());
    }
}
