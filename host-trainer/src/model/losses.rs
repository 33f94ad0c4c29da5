//! Training losses on `[N, C, H, W]` tensors in 0..1. Each returns a scalar tensor so the trainer
//! can weight and log it separately.

use tch::{Device, Kind, Tensor};

/// Mean absolute error, weighted per pixel by `weight` (`[1, 1, H, W]`, mean ≈ 1).
pub fn weighted_l1(pred: &Tensor, target: &Tensor, weight: &Tensor) -> Tensor {
    ((pred - target).abs() * weight).mean(Kind::Float)
}

fn gaussian_window(size: i64, sigma: f64, channels: i64, device: Device) -> Tensor {
    let coords = Tensor::arange(size, (Kind::Float, device)) - (size / 2) as f64;
    let g = (-(&coords * &coords) / (2.0 * sigma * sigma)).exp();
    let g = &g / g.sum(Kind::Float);
    let w = g.unsqueeze(1).matmul(&g.unsqueeze(0));
    w.expand([channels, 1, size, size], false).contiguous()
}

/// 1 − SSIM (11×11 Gaussian window, σ = 1.5, the standard constants for a 0..1 range).
pub fn ssim_loss(pred: &Tensor, target: &Tensor) -> Tensor {
    let c = pred.size()[1];
    let w = gaussian_window(11, 1.5, c, pred.device());
    let blur = |x: &Tensor| x.conv2d(&w, None::<Tensor>, [1, 1], [5, 5], [1, 1], c);
    let (mu_x, mu_y) = (blur(pred), blur(target));
    let sxx = blur(&(pred * pred)) - &mu_x * &mu_x;
    let syy = blur(&(target * target)) - &mu_y * &mu_y;
    let sxy = blur(&(pred * target)) - &mu_x * &mu_y;
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let num = (&mu_x * &mu_y * 2.0 + c1) * (sxy * 2.0 + c2);
    let den = (&mu_x * &mu_x + &mu_y * &mu_y + c1) * (sxx + syy + c2);
    1.0 - (num / den).mean(Kind::Float)
}

/// Same edges at the same places: L1 between the image gradients of prediction and target.
pub fn edge_loss(pred: &Tensor, target: &Tensor) -> Tensor {
    let (h, w) = (pred.size()[2], pred.size()[3]);
    let dx = |x: &Tensor| x.narrow(3, 1, w - 1) - x.narrow(3, 0, w - 1);
    let dy = |x: &Tensor| x.narrow(2, 1, h - 1) - x.narrow(2, 0, h - 1);
    (dx(pred) - dx(target)).abs().mean(Kind::Float)
        + (dy(pred) - dy(target)).abs().mean(Kind::Float)
}

/// Keeps the learned mask on the face and smooth: binary cross-entropy of its logits against a
/// face-shaped prior plus total variation of the mask. (An L1 on the sigmoid's output let the
/// mask saturate at 0 early and stay there: the sigmoid then passes no gradient.)
pub fn mask_loss(mask: &Tensor, logits: &Tensor, prior: &Tensor) -> Tensor {
    let (h, w) = (mask.size()[2], mask.size()[3]);
    let tv = (mask.narrow(3, 1, w - 1) - mask.narrow(3, 0, w - 1))
        .abs()
        .mean(Kind::Float)
        + (mask.narrow(2, 1, h - 1) - mask.narrow(2, 0, h - 1))
            .abs()
            .mean(Kind::Float);
    let fit = logits.binary_cross_entropy_with_logits::<Tensor>(
        &prior.expand_as(logits),
        None,
        None,
        tch::Reduction::Mean,
    );
    fit + tv
}

/// LSGAN: the discriminator pushes real patches to 1 and fakes to 0.
pub fn lsgan_d(real_logits: &Tensor, fake_logits: &Tensor) -> Tensor {
    ((real_logits - 1.0).square().mean(Kind::Float) + fake_logits.square().mean(Kind::Float)) * 0.5
}

/// LSGAN generator side: fakes should score 1.
pub fn lsgan_g(fake_logits: &Tensor) -> Tensor {
    (fake_logits - 1.0).square().mean(Kind::Float)
}

/// Perceptual loss without a pretrained network: L1 between the discriminator's intermediate
/// features of the real and the generated face (feature matching, Salimans et al. 2016).
pub fn feature_matching(real: &[Tensor], fake: &[Tensor]) -> Tensor {
    let n = real.len().saturating_sub(1).max(1);
    real.iter()
        .zip(fake)
        .take(n)
        .map(|(r, f)| (r.detach() - f).abs().mean(Kind::Float))
        .fold(
            Tensor::zeros([], (Kind::Float, fake[0].device())),
            |a, b| a + b,
        )
        / n as f64
}

/// Per-pixel weights that favour the eyes and mouth, from the crop template: `1` everywhere,
/// `priority` inside discs around both eyes and the mouth, normalised to mean 1.
pub fn priority_weights(
    template: &[[f32; 2]; 5],
    size: i64,
    priority: f64,
    device: Device,
) -> Tensor {
    let iod = (template[1][0] - template[0][0]).hypot(template[1][1] - template[0][1]) as f64;
    let mouth = [
        (template[3][0] + template[4][0]) as f64 / 2.0,
        (template[3][1] + template[4][1]) as f64 / 2.0,
    ];
    let centres = [
        (template[0][0] as f64, template[0][1] as f64, 0.3 * iod),
        (template[1][0] as f64, template[1][1] as f64, 0.3 * iod),
        (mouth[0], mouth[1], 0.45 * iod),
    ];
    let mut w = vec![1.0f32; (size * size) as usize];
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            if centres
                .iter()
                .any(|&(cx, cy, r)| (px - cx).hypot(py - cy) <= r)
            {
                w[(y * size + x) as usize] = priority as f32;
            }
        }
    }
    let t = Tensor::from_slice(&w)
        .reshape([1, 1, size, size])
        .to_device(device);
    &t / t.mean(Kind::Float)
}

/// Face-shaped mask prior: an ellipse through the template's eyes and below the mouth.
pub fn face_prior(template: &[[f32; 2]; 5], size: i64, device: Device) -> Tensor {
    let iod = (template[1][0] - template[0][0]) as f64;
    let cx = (template[0][0] + template[1][0]) as f64 / 2.0;
    let eye_y = (template[0][1] + template[1][1]) as f64 / 2.0;
    let mouth_y = (template[3][1] + template[4][1]) as f64 / 2.0;
    let (cy, ry, rx) = (
        (eye_y + mouth_y) / 2.0,
        (mouth_y - eye_y) * 1.25,
        iod * 1.05,
    );
    let mut m = vec![0.0f32; (size * size) as usize];
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = ((x as f64 + 0.5 - cx) / rx, (y as f64 + 0.5 - cy) / ry);
            m[(y * size + x) as usize] = if dx * dx + dy * dy <= 1.0 { 1.0 } else { 0.0 };
        }
    }
    Tensor::from_slice(&m)
        .reshape([1, 1, size, size])
        .to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand(shape: [i64; 4]) -> Tensor {
        Tensor::rand(shape, (Kind::Float, Device::Cpu))
    }

    fn val(t: &Tensor) -> f64 {
        f64::try_from(t).unwrap()
    }

    #[test]
    fn identical_images_have_zero_loss_and_noise_raises_it() {
        let a = rand([2, 3, 32, 32]);
        let noisy = (&a + rand([2, 3, 32, 32]) * 0.3).clamp(0.0, 1.0);
        assert!(val(&ssim_loss(&a, &a)).abs() < 1e-5);
        assert!(val(&ssim_loss(&noisy, &a)) > 0.05);
        assert_eq!(val(&edge_loss(&a, &a)), 0.0);
        assert!(val(&edge_loss(&noisy, &a)) > 0.01);
        let w = Tensor::ones([1, 1, 32, 32], (Kind::Float, Device::Cpu));
        assert!(
            (val(&weighted_l1(&noisy, &a, &w)) - val(&(&noisy - &a).abs().mean(Kind::Float))).abs()
                < 1e-6
        );
    }

    #[test]
    fn priority_weights_have_mean_one_and_favour_the_eyes() {
        let t = shared_proto::FaceCropSpec::default().template_px();
        let w = priority_weights(&t, 64, 3.0, Device::Cpu);
        assert!((val(&w.mean(Kind::Float)) - 1.0).abs() < 1e-5);
        let at = |x: i64, y: i64| val(&w.get(0).get(0).get(y).get(x));
        assert!(at(t[0][0] as i64, t[0][1] as i64) > 2.0 * at(2, 2));
        let prior = face_prior(&t, 64, Device::Cpu);
        assert_eq!(
            val(&prior.get(0).get(0).get(t[2][1] as i64).get(t[2][0] as i64)),
            1.0,
            "nose inside"
        );
        assert_eq!(
            val(&prior.get(0).get(0).get(1).get(1)),
            0.0,
            "corner outside"
        );
    }
}
