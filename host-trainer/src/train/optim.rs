//! Adam with its state in plain named tensors, so checkpoints carry the optimiser and a resumed
//! run continues exactly (tch's built-in optimisers do not expose their state).

use tch::nn::VarStore;
use tch::Tensor;

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
                let g = p.grad();
                if !g.defined() {
                    continue;
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

    /// `prefix/m/<var>`, `prefix/v/<var>` and `prefix/step`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![(format!("{prefix}/step"), Tensor::from(self.step))];
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("{prefix}/m/{name}"), m.shallow_clone()));
            out.push((format!("{prefix}/v/{name}"), v.shallow_clone()));
        }
        out
    }

    pub fn load_state(
        &mut self,
        prefix: &str,
        get: &dyn Fn(&str) -> Option<Tensor>,
    ) -> Result<(), String> {
        let step = get(&format!("{prefix}/step")).ok_or("optimiser step missing")?;
        self.step = i64::try_from(&step).map_err(|e| e.to_string())?;
        for ((name, _), (m, v)) in self
            .params
            .iter()
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            let load = |kind: &str, dst: &mut Tensor| -> Result<(), String> {
                let src = get(&format!("{prefix}/{kind}/{name}"))
                    .ok_or_else(|| format!("optimiser state for {name} missing"))?;
                tch::no_grad(|| dst.f_copy_(&src)).map_err(|e| format!("{name}: {e}"))
            };
            load("m", m)?;
            load("v", v)?;
        }
        Ok(())
    }
}
