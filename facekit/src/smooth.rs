//! One-Euro filter (Casiez et al. 2012) for landmarks across frames: heavy smoothing when the face
//! is still (no jitter), little lag when it moves fast.

#[derive(Debug, Clone)]
pub struct OneEuro {
    pub min_cutoff: f32,
    pub beta: f32,
    pub d_cutoff: f32,
    state: Option<(Vec<f32>, Vec<f32>)>,
}

fn alpha(cutoff: f32, rate: f32) -> f32 {
    let tau = 1.0 / (2.0 * std::f32::consts::PI * cutoff);
    1.0 / (1.0 + tau * rate)
}

impl OneEuro {
    pub fn new(min_cutoff: f32, beta: f32) -> Self {
        Self {
            min_cutoff,
            beta,
            d_cutoff: 1.0,
            state: None,
        }
    }

    /// Filters `x` sampled at `rate` Hz; the first call passes through.
    pub fn filter(&mut self, x: &[f32], rate: f32) -> Vec<f32> {
        let Some((prev, dprev)) = &self.state else {
            self.state = Some((x.to_vec(), vec![0.0; x.len()]));
            return x.to_vec();
        };
        let mut out = Vec::with_capacity(x.len());
        let mut dnew = Vec::with_capacity(x.len());
        for i in 0..x.len() {
            let dx = (x[i] - prev[i]) * rate;
            let ad = alpha(self.d_cutoff, rate);
            let d = ad * dx + (1.0 - ad) * dprev[i];
            let a = alpha(self.min_cutoff + self.beta * d.abs(), rate);
            out.push(a * x[i] + (1.0 - a) * prev[i]);
            dnew.push(d);
        }
        self.state = Some((out.clone(), dnew));
        out
    }

    pub fn reset(&mut self) {
        self.state = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_damped_and_a_step_is_followed() {
        let mut f = OneEuro::new(1.0, 0.05);
        let noisy: Vec<f32> = (0..60)
            .map(|i| 100.0 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let out: Vec<f32> = noisy.iter().map(|&v| f.filter(&[v], 25.0)[0]).collect();
        let spread = |v: &[f32]| {
            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
        };
        assert!(
            spread(&out[30..]) < 0.5 * spread(&noisy[30..]),
            "jitter damped"
        );
        let mut last = 0.0;
        for _ in 0..25 {
            last = f.filter(&[150.0], 25.0)[0];
        }
        assert!(
            (last - 150.0).abs() < 2.0,
            "a real move is followed within a second: {last}"
        );
    }
}
