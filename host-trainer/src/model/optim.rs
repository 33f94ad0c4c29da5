//! Adam with its state in plain named tensors, so checkpoints carry the optimiser and a resumed
//! run continues exactly (tch's built-in optimisers do not expose their state).

use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};

pub struct Adam {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub step: i64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    pub fn new(vs: &VarStore, lr: f64, betas: (f64, f64)) -> Self {
        let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            lr,
            betas,
            eps: 1e-8,
            step: 0,
            params,
            m,
            v,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    pub fn step(&mut self) {
        self.step_unscaled(1.0);
    }

    /// One step with every gradient multiplied by `inv_scale` first (loss scaling undone).
    pub fn step_unscaled(&mut self, inv_scale: f64) {
        self.step += 1;
        let (b1, b2) = self.betas;
        let c1 = 1.0 - b1.powi(self.step as i32);
        let c2 = 1.0 - b2.powi(self.step as i32);
        tch::no_grad(|| {
            for ((_, p), (m, v)) in self
                .params
                .iter_mut()
                .zip(self.m.iter_mut().zip(self.v.iter_mut()))
            {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if inv_scale != 1.0 {
                    g *= inv_scale;
                }
                // Exponential moving averages in place: m += (1-b1)(g-m), v += (1-b2)(g²-v).
                let _ = m.lerp_(&g, 1.0 - b1);
                let _ = v.lerp_(&g.square(), 1.0 - b2);
                // p -= lr/c1 · m / (sqrt(v/c2) + eps), with as few passes over the weights as tch allows.
                let mut denom = v.sqrt();
                let _ = denom.g_div_scalar_(c2.sqrt()).g_add_scalar_(self.eps);
                let _ = p.addcdiv_(&(&*m * (-self.lr / c1)), &denom);
            }
        });
    }

    /// True when every gradient is finite; one device sync for all of them.
    pub fn grads_finite(&self) -> bool {
        let flags: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .map(|g| g.isfinite().all())
            .collect();
        flags.is_empty() || bool::try_from(Tensor::stack(&flags, 0).all()).unwrap_or(false)
    }

    /// `prefix/m/<var>`, `prefix/v/<var>` and `prefix/step`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![(format!("{prefix}/step"), Tensor::from(self.step))];
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("{prefix}/m/{name}"), m.shallow_clone()));
            out.push((format!("{prefix}/v/{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores what [`Self::state`] saved; `path` names the checkpoint in errors.
    pub fn load_state(
        &mut self,
        prefix: &str,
        get: &dyn Fn(&str) -> Option<Tensor>,
        path: &Path,
    ) -> Result<()> {
        let problem = |problem: String| Error::Checkpoint {
            path: path.to_path_buf(),
            problem,
        };
        let step = get(&format!("{prefix}/step"))
            .ok_or_else(|| problem("optimiser step missing".into()))?;
        self.step = i64::try_from(&step).map_err(|e| problem(e.to_string()))?;
        for ((name, _), (m, v)) in self
            .params
            .iter()
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            let load = |kind: &str, dst: &mut Tensor| -> Result<()> {
                let src = get(&format!("{prefix}/{kind}/{name}"))
                    .ok_or_else(|| problem(format!("optimiser state for {name} missing")))?;
                tch::no_grad(|| dst.f_copy_(&src)).map_err(|e| problem(format!("{name}: {e}")))
            };
            load("m", m)?;
            load("v", v)?;
        }
        Ok(())
    }
}

/// Dynamic loss scaling for fp16 mixed precision, as PyTorch's `GradScaler` does it: the loss is
/// multiplied by `scale` so small gradients survive fp16, a step whose gradients overflowed is
/// skipped and halves the scale, and 2000 clean steps in a row double it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossScaler {
    pub scale: f64,
    pub clean_steps: i64,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            clean_steps: 0,
        }
    }
}

impl LossScaler {
    const GROWTH_INTERVAL: i64 = 2000;

    /// Backpropagates `loss · scale`, then steps `opt` unless a gradient overflowed.
    /// Returns whether the step was taken.
    pub fn backward_and_step(&mut self, loss: &Tensor, opt: &mut Adam) -> bool {
        (loss * self.scale).backward();
        let finite = opt.grads_finite();
        if finite {
            opt.step_unscaled(1.0 / self.scale);
            self.clean_steps += 1;
            if self.clean_steps >= Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        } else {
            self.scale = (self.scale * 0.5).max(1.0);
            self.clean_steps = 0;
        }
        finite
    }

    /// `prefix/scale` and `prefix/clean_steps`, for checkpoints.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![
            (format!("{prefix}/scale"), Tensor::from(self.scale)),
            (
                format!("{prefix}/clean_steps"),
                Tensor::from(self.clean_steps),
            ),
        ]
    }

    /// The saved scaler, or a fresh one when the checkpoint was written without mixed precision.
    pub fn load_state(prefix: &str, get: &dyn Fn(&str) -> Option<Tensor>) -> Self {
        let scale = get(&format!("{prefix}/scale")).and_then(|t| f64::try_from(t).ok());
        let clean = get(&format!("{prefix}/clean_steps")).and_then(|t| i64::try_from(t).ok());
        match (scale, clean) {
            (Some(scale), Some(clean_steps)) => Self { scale, clean_steps },
            _ => Self::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::VarStore;
    use tch::{Device, Kind};

    fn one_weight() -> (VarStore, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[4], tch::nn::Init::Const(1.0));
        (vs, w)
    }

    #[test]
    fn a_scaled_step_equals_the_unscaled_step() {
        let (vs_a, w_a) = one_weight();
        let (vs_b, w_b) = one_weight();
        let mut plain = Adam::new(&vs_a, 0.1, (0.5, 0.999));
        let mut scaled = Adam::new(&vs_b, 0.1, (0.5, 0.999));
        let mut scaler = LossScaler::default();
        for _ in 0..3 {
            plain.zero_grad();
            (&w_a * 3.0).sum(Kind::Float).backward();
            plain.step();
            scaled.zero_grad();
            assert!(scaler.backward_and_step(&(&w_b * 3.0).sum(Kind::Float), &mut scaled));
        }
        let diff = f64::try_from((&w_a - &w_b).abs().max()).unwrap();
        assert!(diff < 1e-6, "scaled and plain Adam differ by {diff}");
    }

    #[test]
    fn an_overflowing_step_is_skipped_and_halves_the_scale() {
        let (vs, w) = one_weight();
        let mut opt = Adam::new(&vs, 0.1, (0.5, 0.999));
        let mut scaler = LossScaler::default();
        let before = w.copy();
        opt.zero_grad();
        let overflow = (&w * f64::INFINITY).sum(Kind::Float);
        assert!(!scaler.backward_and_step(&overflow, &mut opt));
        assert_eq!(scaler.scale, 32768.0);
        assert_eq!(opt.step, 0, "the optimiser must not count a skipped step");
        assert!(w.equal(&before), "weights changed on a skipped step");
    }
}
