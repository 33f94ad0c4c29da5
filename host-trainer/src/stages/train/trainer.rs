//! One optimisation step of the face-swap GAN, and checkpoints that resume it exactly.

use std::path::Path;

use shared_proto::FaceCropSpec;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

use crate::artefacts::train_config::TrainConfig;
use crate::error::{Error, Result};
use crate::model::checkpoint;
use crate::model::losses;
use crate::model::net::{Autoencoder, Net};
use crate::model::optim::{Adam, LossScaler};
use crate::model::tensors::to_host;

/// Every loss term of one person, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Terms {
    pub l1: f64,
    pub ssim: f64,
    pub edge: f64,
    pub mask: f64,
    pub gan: f64,
    pub feature: f64,
    pub total: f64,
    pub discriminator: f64,
}

/// A batch for one person: warped inputs and true targets, `[N, 3, S, S]` in 0..1.
pub struct Batch {
    pub input: Tensor,
    pub target: Tensor,
    /// `[N, 1, H, W]`: how much of each target pixel shows the face, where training pasted
    /// occluders (`augment.occluders`); `None` = all of it.
    pub visible: Option<Tensor>,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub device: Device,
    pub generator_vars: VarStore,
    pub discriminator_vars: VarStore,
    pub model: Autoencoder,
    discriminators: Vec<Net>,
    /// Tells A's codes from B's (only with `code_adversarial` > 0, so checkpoints without it
    /// keep loading).
    code_discriminator: Option<Net>,
    opt_g: Adam,
    opt_d: Adam,
    /// fp16 autocast with loss scaling (CUDA and `mixed_precision` only).
    amp: bool,
    scaler_g: LossScaler,
    scaler_d: LossScaler,
    priority: Tensor,
    prior: Tensor,
    /// Per-pixel weight of the generated face in the loss images (`outside_face` off the face).
    face_weight: Tensor,
}

impl Trainer {
    pub fn new(config: TrainConfig, crop: &FaceCropSpec, device: Device) -> Result<Self> {
        tch::manual_seed(config.seed as i64);
        let spec = model_spec::swap::preset(&config.preset)
            .ok_or_else(|| Error::UnknownPreset(config.preset.clone()))?;
        let generator_vars = VarStore::new(device);
        let discriminator_vars = VarStore::new(device);
        let model = Autoencoder::new(&generator_vars.root(), &spec, 2);
        let dspec = model_spec::swap::discriminator(spec.size);
        let discriminators = (0..2)
            .map(|k| Net::new(&(discriminator_vars.root() / format!("d{k}")), &dspec))
            .collect();
        let code_discriminator = (config.weights.code_adversarial > 0.0).then(|| {
            let code = *spec
                .encoder
                .shapes()
                .expect("presets are valid")
                .last()
                .expect("the encoder has layers");
            Net::new(
                &(discriminator_vars.root() / "code"),
                &model_spec::swap::code_discriminator(code),
            )
        });
        let opt_g = Adam::new(&generator_vars, config.lr, (config.beta1, config.beta2));
        let opt_d = Adam::new(
            &discriminator_vars,
            config.lr_discriminator,
            (config.beta1, config.beta2),
        );
        let template = crop.template_px();
        let size = spec.size as i64;
        let priority =
            losses::priority_weights(&template, size, config.weights.eye_mouth_priority, device);
        let prior = losses::face_prior(&template, size, device);
        let amp = config.mixed_precision && device.is_cuda();
        let outside = config.weights.outside_face.clamp(0.0, 1.0);
        let face_weight = &prior + (prior.ones_like() - &prior) * outside;
        Ok(Self {
            config,
            device,
            generator_vars,
            discriminator_vars,
            model,
            discriminators,
            code_discriminator,
            opt_g,
            opt_d,
            amp,
            scaler_g: LossScaler::default(),
            scaler_d: LossScaler::default(),
            priority,
            prior,
            face_weight,
        })
    }

    pub fn step_count(&self) -> i64 {
        self.opt_g.step
    }

    /// Sets both learning rates to the config's times `factor` (the end-of-run decay).
    pub fn set_lr_factor(&mut self, factor: f64) {
        self.opt_g.lr = self.config.lr * factor;
        self.opt_d.lr = self.config.lr_discriminator * factor;
    }

    /// Whether forward passes run in fp16 autocast.
    pub fn mixed_precision(&self) -> bool {
        self.amp
    }

    /// Runs `f` under fp16 autocast when mixed precision is on; outputs come back as f32 so every
    /// loss is computed in full precision.
    fn forward<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.amp {
            crate::model::aten::cuda(f)
        } else {
            f()
        }
    }

    /// Generator objective of `person` and its terms, with the generated faces for the D step:
    /// the reconstruction and, when `swap_gan` is on, the swap into the other person.
    /// Terms with weight 0 are not computed at all (they would only cost time).
    fn generator_terms(&self, person: usize, batch: &Batch) -> (Tensor, Terms, Generated) {
        let w = &self.config.weights;
        let f32 = |t: Tensor| t.to_kind(Kind::Float);
        let code = self.forward(|| self.model.encode(&batch.input));
        let (rgb, mask, mask_logits) =
            self.forward(|| self.model.decode_with_logits(&code, person));
        // Where an occluder hides the face, neither the face nor its mask is asked for: the
        // mask is fitted to the face ellipse less the occluder.
        let shows = |t: &Tensor| match &batch.visible {
            Some(v) => t * v,
            None => t.shallow_clone(),
        };
        let (face_weight, prior) = (shows(&self.face_weight), shows(&self.prior));
        // Masked training: off the face (and under an occluder), the prediction is (mostly)
        // replaced by the target, so those pixels add little loss and little gradient to any
        // term, the GAN's included.
        let rgb = if w.outside_face < 1.0 || batch.visible.is_some() {
            f32(rgb) * &face_weight + &batch.target * (face_weight.ones_like() - &face_weight)
        } else {
            f32(rgb)
        };
        let (mask, mask_logits) = (f32(mask), f32(mask_logits));
        let zero = || Tensor::zeros([], (Kind::Float, self.device));
        let term = |weight: f64, f: &dyn Fn() -> Tensor| if weight > 0.0 { f() } else { zero() };
        let l1 = term(w.l1, &|| {
            losses::weighted_l1(&rgb, &batch.target, &self.priority)
        });
        let ssim = term(w.ssim, &|| losses::ssim_loss(&rgb, &batch.target));
        let edge = term(w.edge, &|| losses::edge_loss(&rgb, &batch.target));
        // The other decoder on this person's code: the swap, and the mask it pastes with.
        let swapped = (w.mask > 0.0 && w.swap_mask > 0.0 || w.swap_gan > 0.0).then(|| {
            let (rgb, mask, logits) =
                self.forward(|| self.model.decode_with_logits(&code, 1 - person));
            (f32(rgb), f32(mask), f32(logits))
        });
        let mask_l = term(w.mask, &|| {
            let own = losses::mask_loss(&mask, &mask_logits, &prior);
            match &swapped {
                Some((_, swap_mask, logits)) if w.swap_mask > 0.0 => {
                    own + losses::mask_loss(swap_mask, logits, &prior) * (w.swap_mask / w.mask)
                }
                _ => own,
            }
        });
        let (gan, feature) = if w.gan > 0.0 || w.feature > 0.0 {
            let d = &self.discriminators[person];
            let feats = |x: &Tensor| -> Vec<Tensor> {
                self.forward(|| d.forward_all(x))
                    .into_iter()
                    .map(f32)
                    .collect()
            };
            let fake_feats = feats(&rgb);
            let real_feats = tch::no_grad(|| feats(&batch.target));
            (
                losses::lsgan_g(fake_feats.last().expect("D has layers")),
                losses::feature_matching(&real_feats, &fake_feats),
            )
        } else {
            (zero(), zero())
        };
        // The code must pass as the other person's: labels swapped (A = 0, B = 1).
        let code_adv = match &self.code_discriminator {
            Some(d) if w.code_adversarial > 0.0 => {
                let other = if person == 0 { 1.0 } else { 0.0 };
                (self.forward(|| d.forward(&code)).to_kind(Kind::Float) - other)
                    .square()
                    .mean(Kind::Float)
            }
            _ => zero(),
        };
        // The swap must pass as a real face of the other person.
        let swap_gan = match &swapped {
            Some((swap_rgb, _, _)) if w.swap_gan > 0.0 => {
                let d = &self.discriminators[1 - person];
                losses::lsgan_g(&self.forward(|| d.forward(swap_rgb)).to_kind(Kind::Float))
            }
            _ => zero(),
        };
        let total = &l1 * w.l1
            + &ssim * w.ssim
            + &edge * w.edge
            + &mask_l * w.mask
            + &gan * w.gan
            + &feature * w.feature
            + &swap_gan * w.swap_gan
            + &code_adv * w.code_adversarial;
        // Logged as one adversarial figure, in the units of `gan`.
        let gan = if w.gan > 0.0 {
            gan + &swap_gan * (w.swap_gan / w.gan) + &code_adv * (w.code_adversarial / w.gan)
        } else {
            gan + &swap_gan + &code_adv
        };
        let values = to_host(&[&l1, &ssim, &edge, &mask_l, &gan, &feature, &total]);
        let terms = Terms {
            l1: values[0],
            ssim: values[1],
            edge: values[2],
            mask: values[3],
            gan: values[4],
            feature: values[5],
            total: values[6],
            discriminator: 0.0,
        };
        let swap = swapped
            .filter(|_| w.swap_gan > 0.0)
            .map(|(rgb, _, _)| rgb.detach());
        let code = self.code_discriminator.as_ref().map(|_| code.detach());
        (
            total,
            terms,
            Generated {
                own: rgb,
                swap,
                code,
            },
        )
    }

    /// Loss terms on `batches` without changing any weight.
    pub fn evaluate(&self, batches: &[Batch; 2]) -> [Terms; 2] {
        let _guard = tch::no_grad_guard();
        let (mut terms, fakes): (Vec<Terms>, Vec<Generated>) = (0..2)
            .map(|p| {
                let (_, t, fake) = self.generator_terms(p, &batches[p]);
                (t, fake)
            })
            .unzip();
        for p in 0..2 {
            let dl = self.discriminator_loss(p, &batches[p].target, &fakes_for(&fakes, p));
            terms[p].discriminator = f64::try_from(dl).unwrap_or(f64::NAN);
        }
        [terms[0], terms[1]]
    }

    /// One generator step on both people, then one discriminator step.
    pub fn step(&mut self, batches: &[Batch; 2]) -> [Terms; 2] {
        let (mut terms, fakes) = self.step_generator(batches);
        let d = self.step_discriminator(batches, &fakes);
        for p in 0..2 {
            terms[p].discriminator = d[p];
        }
        terms
    }

    /// Updates encoder and decoders; returns the terms and, per person, the (detached) fakes
    /// their discriminator learns from: the reconstructions and the swaps into that person.
    pub fn step_generator(&mut self, batches: &[Batch; 2]) -> ([Terms; 2], Fakes) {
        let mut terms = [Terms::default(); 2];
        self.opt_g.zero_grad();
        let mut total = Tensor::zeros([], (Kind::Float, self.device));
        let mut fakes = Vec::with_capacity(2);
        for p in 0..2 {
            let (loss, t, fake) = self.generator_terms(p, &batches[p]);
            total += loss;
            terms[p] = t;
            fakes.push(Generated {
                own: fake.own.detach(),
                ..fake
            });
        }
        backward_and_step(
            &total,
            &mut self.opt_g,
            self.amp.then_some(&mut self.scaler_g),
        );
        let codes = match (&fakes[0].code, &fakes[1].code) {
            (Some(a), Some(b)) => Some([a.shallow_clone(), b.shallow_clone()]),
            _ => None,
        };
        let images = [0, 1].map(|p| fakes_for(&fakes, p));
        (terms, Fakes { images, codes })
    }

    /// Updates the discriminators on real targets vs `fakes` (per person); returns their losses.
    /// With the code discriminator, each person's figure includes half of its loss.
    pub fn step_discriminator(&mut self, batches: &[Batch; 2], fakes: &Fakes) -> [f64; 2] {
        let mut out = [0.0; 2];
        let w = &self.config.weights;
        let codes = fakes.codes.as_ref().zip(self.code_discriminator.as_ref());
        let images = w.gan > 0.0 || w.feature > 0.0 || w.swap_gan > 0.0;
        if !images && codes.is_none() {
            return out; // no term uses the discriminators: neither train nor run them
        }
        self.opt_d.zero_grad();
        let mut total = Tensor::zeros([], (Kind::Float, self.device));
        let mut losses_d = Vec::with_capacity(2);
        // A's codes are labelled 0, B's 1.
        let code_loss = codes.map(|([a, b], d)| {
            let score = |x: &Tensor| self.forward(|| d.forward(x)).to_kind(Kind::Float);
            losses::lsgan_d(&score(b), &score(a))
        });
        for (p, (batch, fake)) in batches.iter().zip(&fakes.images).enumerate() {
            let mut dl = if images {
                self.discriminator_loss(p, &batch.target, fake)
            } else {
                Tensor::zeros([], (Kind::Float, self.device))
            };
            if let Some(c) = &code_loss {
                dl += c * 0.5;
            }
            total += &dl;
            losses_d.push(dl);
        }
        backward_and_step(
            &total,
            &mut self.opt_d,
            self.amp.then_some(&mut self.scaler_d),
        );
        out.copy_from_slice(&to_host(&losses_d));
        out
    }

    /// LSGAN loss of person `p`'s discriminator on real `target` vs generated `fake`.
    fn discriminator_loss(&self, p: usize, target: &Tensor, fake: &Tensor) -> Tensor {
        let d = &self.discriminators[p];
        let score = |x: &Tensor| self.forward(|| d.forward(x)).to_kind(Kind::Float);
        losses::lsgan_d(&score(target), &score(fake))
    }

    /// Weights and optimiser state in one safetensors file, written atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (prefix, vs) in [("g", &self.generator_vars), ("d", &self.discriminator_vars)] {
            for (name, t) in vs.variables() {
                named.push((format!("{prefix}/{name}"), t));
            }
        }
        named.extend(self.opt_g.state("opt_g"));
        named.extend(self.opt_d.state("opt_d"));
        named.extend(self.scaler_g.state("amp_g"));
        named.extend(self.scaler_d.state("amp_d"));
        named.sort_by(|a, b| a.0.cmp(&b.0));
        checkpoint::write(path, &named)
    }

    /// Starts the generator from the weights in `path` (a warm start or another run's
    /// checkpoint; fp16 weights are widened): encoder and decoders, not the optimiser state,
    /// the discriminators or the step count.
    pub fn init_generator(&mut self, path: &Path) -> Result<()> {
        checkpoint::load_generator(&self.generator_vars, path).map(|_| ())
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        let tensors = checkpoint::read(path)?;
        checkpoint::restore(&self.generator_vars, "g", &tensors, path)?;
        checkpoint::restore(&self.discriminator_vars, "d", &tensors, path)?;
        let get = |n: &str| tensors.get(n).map(|t| t.to_device(self.device));
        self.opt_g.load_state("opt_g", &get, path)?;
        self.opt_d.load_state("opt_d", &get, path)?;
        self.scaler_g = LossScaler::load_state("amp_g", &get);
        self.scaler_d = LossScaler::load_state("amp_d", &get);
        Ok(())
    }
}

/// The faces one person's generator pass made: the reconstruction, and the swap into the
/// other person (when `swap_gan` is on; detached: only that person's discriminator uses it),
/// and the code (detached, when the code discriminator is on).
struct Generated {
    own: Tensor,
    swap: Option<Tensor>,
    code: Option<Tensor>,
}

/// What the discriminators learn from after a generator step: per person, the faces that are
/// fake for that person's discriminator, and both people's codes for the code discriminator.
pub struct Fakes {
    pub images: [Tensor; 2],
    pub codes: Option<[Tensor; 2]>,
}

/// What person `p`'s discriminator learns as fake: `p`'s reconstructions and the other
/// person's faces swapped into `p`.
fn fakes_for(generated: &[Generated], p: usize) -> Tensor {
    match &generated[1 - p].swap {
        Some(swap) => Tensor::cat(&[generated[p].own.detach(), swap.shallow_clone()], 0),
        None => generated[p].own.detach(),
    }
}

/// Backpropagates `loss` and steps `opt`, through `scaler` under mixed precision.
fn backward_and_step(loss: &Tensor, opt: &mut Adam, scaler: Option<&mut LossScaler>) {
    match scaler {
        Some(scaler) => {
            scaler.backward_and_step(loss, opt);
        }
        None => {
            loss.backward();
            opt.step();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artefacts::train_config::LossWeights;
    use crate::model::tensors::to_tensor;
    use facekit::{align_face, FaceDetectorConfig, FrameSource, RetinaFace, VideoReader};

    use crate::test_device as device;

    /// Four aligned 64-px crops from the first frames of a sample video.
    fn real_crops(video: &str) -> Vec<image::RgbImage> {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let det = RetinaFace::load(
            root.join(facekit::RETINAFACE_MODEL),
            FaceDetectorConfig::default(),
        )
        .expect("run `make setup`");
        let mut v = VideoReader::open(root.join(video)).unwrap();
        let spec = FaceCropSpec::default();
        let mut out = Vec::new();
        while out.len() < 4 {
            let f = v.next_frame().unwrap().expect("enough frames");
            if let Some(d) = det.detect(&f).unwrap().first() {
                out.push(align_face(&f, &d.landmarks, &spec).unwrap().image);
            }
        }
        out
    }

    fn batches() -> [Batch; 2] {
        ["data/carphone_pristine.mp4", "data/movie.avi"].map(|v| {
            let t = to_tensor(&real_crops(v), device());
            Batch {
                input: t.shallow_clone(),
                target: t,
                visible: None,
            }
        })
    }

    fn only(term: &str) -> TrainConfig {
        let zero = LossWeights {
            l1: 0.0,
            ssim: 0.0,
            edge: 0.0,
            mask: 0.0,
            gan: 0.0,
            feature: 0.0,
            eye_mouth_priority: 3.0,
            outside_face: 1.0,
            swap_mask: 0.0,
            swap_gan: 0.0,
            code_adversarial: 0.0,
        };
        let weights = match term {
            "l1" => LossWeights { l1: 1.0, ..zero },
            "ssim" => LossWeights { ssim: 1.0, ..zero },
            "edge" => LossWeights { edge: 1.0, ..zero },
            "mask" => LossWeights {
                mask: 1.0,
                swap_mask: 1.0,
                ..zero
            },
            "gan" => LossWeights { gan: 1.0, ..zero },
            "feature" => LossWeights {
                feature: 1.0,
                ..zero
            },
            "swap_gan" => LossWeights {
                swap_gan: 1.0,
                ..zero
            },
            "code_adversarial" => LossWeights {
                code_adversarial: 1.0,
                ..zero
            },
            _ => unreachable!(),
        };
        TrainConfig {
            lr: 1e-3,
            weights,
            ..TrainConfig::default()
        }
    }

    fn term(t: &Terms, name: &str) -> f64 {
        match name {
            "l1" => t.l1,
            "ssim" => t.ssim,
            "edge" => t.edge,
            "mask" => t.mask,
            // The swap's adversarial term is logged inside `gan`.
            "gan" | "swap_gan" | "code_adversarial" => t.gan,
            "feature" => t.feature,
            _ => unreachable!(),
        }
    }

    #[test]
    fn one_step_lowers_each_loss_on_a_fixed_batch() {
        const SEEDS: u64 = 8;
        let b = batches();
        let crop = FaceCropSpec::default();
        for name in [
            "l1",
            "ssim",
            "edge",
            "mask",
            "gan",
            "feature",
            "swap_gan",
            "code_adversarial",
        ] {
            for seed in 0..SEEDS {
                let mut config = only(name);
                config.seed = seed;
                let adversarial = matches!(name, "gan" | "swap_gan" | "code_adversarial");
                if adversarial {
                    // Adam's first step moves every weight by the full rate; a logit behind a
                    // discriminator overshoots at 1e-3 for some initialisations.
                    config.lr = 1e-5;
                }
                let mut tr = Trainer::new(config, &crop, device()).unwrap();
                let before = tr.evaluate(&b);
                let _ = tr.step_generator(&b);
                let after = tr.evaluate(&b);
                let [x, y] = [&before, &after].map(|t| t.map(|t| term(&t, name)));
                if adversarial {
                    // Both people's terms pull on the shared encoder in opposite directions
                    // (each code must pass as the other's), so only their sum must fall.
                    let (x, y) = (x[0] + x[1], y[0] + y[1]);
                    assert!(y < x, "{name} of both, seed {seed}: {x} -> {y}");
                } else {
                    for p in 0..2 {
                        assert!(
                            y[p] < x[p],
                            "{name} of person {p}, seed {seed}: {x:?} -> {y:?}"
                        );
                    }
                }
            }
        }
        // The discriminator's own loss falls after its step (a small step: Adam's first update
        // moves every weight by the full learning rate).
        let mut tr = Trainer::new(
            TrainConfig {
                lr_discriminator: 1e-5,
                ..only("gan")
            },
            &crop,
            device(),
        )
        .unwrap();
        let (_, fakes) = tr.step_generator(&b);
        let before = tr.step_discriminator(&b, &fakes);
        let after = tr.step_discriminator(&b, &fakes);
        assert!(
            after[0] < before[0] && after[1] < before[1],
            "{before:?} -> {after:?}"
        );
    }

    #[test]
    fn under_an_occluder_neither_the_face_nor_its_mask_is_asked_for() {
        let crop = FaceCropSpec::default();
        let b = batches();
        let size = crop.size as i64;
        // A "hand" over the lower face: rows 42 and below.
        let rows = Tensor::arange(size, (Kind::Float, device())).view([1, 1, size, 1]);
        let visible = rows
            .lt(42.0)
            .to_kind(Kind::Float)
            .expand([4, 1, size, size], false)
            .contiguous();
        let with = |p: usize, target: &Tensor, visible: Option<&Tensor>| Batch {
            input: b[p].input.shallow_clone(),
            target: target.shallow_clone(),
            visible: visible.map(Tensor::shallow_clone),
        };
        let scribbled = b.each_ref().map(|b| {
            &b.target * &visible + b.target.rand_like() * (visible.ones_like() - &visible)
        });
        let tr = Trainer::new(only("l1"), &crop, device()).unwrap();
        let hidden = [0, 1].map(|p| with(p, &b[p].target, Some(&visible)));
        let [x, y, plain] = [
            hidden,
            [0, 1].map(|p| with(p, &scribbled[p], Some(&visible))),
            [0, 1].map(|p| with(p, &scribbled[p], None)),
        ]
        .map(|b| tr.evaluate(&b));
        for p in 0..2 {
            assert!(
                (x[p].l1 - y[p].l1).abs() < 1e-6,
                "what the occluder hides counted: {} vs {}",
                x[p].l1,
                y[p].l1
            );
            assert!(plain[p].l1 > x[p].l1 + 1e-3, "without it, it counts");
        }
        // The mask is fitted to the face ellipse less the occluder.
        let mut tr = Trainer::new(only("mask"), &crop, device()).unwrap();
        let hidden = [0, 1].map(|p| with(p, &b[p].target, Some(&visible)));
        for _ in 0..40 {
            let _ = tr.step_generator(&hidden);
        }
        let prior = losses::face_prior(&crop.template_px(), size, device());
        for (p, batch) in b.iter().enumerate() {
            let mask = tch::no_grad(|| {
                tr.model
                    .decode_with_logits(&tr.model.encode(&batch.input), p)
                    .1
            });
            let mean_over = |region: &Tensor| {
                let w = region * &prior;
                f64::try_from((&mask * &w).sum(Kind::Float) / w.sum(Kind::Float)).unwrap()
            };
            let (shown, hidden) = (
                mean_over(&visible),
                mean_over(&(visible.ones_like() - &visible)),
            );
            assert!(
                shown > 0.7 && hidden < 0.3,
                "person {p}: mask over the shown face {shown:.2}, over the occluded face {hidden:.2}"
            );
        }
    }

    #[test]
    fn with_swap_gan_each_discriminator_also_learns_the_swaps_into_its_person() {
        let b = batches();
        let crop = FaceCropSpec::default();
        for (swap_gan, per_person) in [(0.0, 4), (0.5, 8)] {
            let config = TrainConfig {
                weights: LossWeights {
                    swap_gan,
                    ..LossWeights::default()
                },
                ..TrainConfig::default()
            };
            let mut tr = Trainer::new(config, &crop, device()).unwrap();
            let (_, fakes) = tr.step_generator(&b);
            for f in &fakes.images {
                assert_eq!(f.size()[0], per_person, "swap_gan {swap_gan}");
            }
        }
    }

    #[test]
    fn the_code_discriminator_learns_whose_code_it_is_and_exists_only_when_asked_for() {
        let b = batches();
        let crop = FaceCropSpec::default();
        let config = TrainConfig {
            // Small steps: Adam's first ones move every weight by the full rate.
            lr_discriminator: 1e-6,
            weights: LossWeights {
                code_adversarial: 1.0,
                gan: 0.0,
                feature: 0.0,
                ..LossWeights::default()
            },
            ..TrainConfig::default()
        };
        let mut tr = Trainer::new(config, &crop, device()).unwrap();
        let (_, fakes) = tr.step_generator(&b);
        assert!(fakes.codes.is_some());
        let first = tr.step_discriminator(&b, &fakes);
        for _ in 0..5 {
            tr.step_discriminator(&b, &fakes);
        }
        let later = tr.step_discriminator(&b, &fakes);
        assert!(
            later[0] < first[0] && later[0] > 0.0,
            "{first:?} -> {later:?}"
        );
        // Off by default: no code discriminator, so checkpoints without one keep loading.
        let mut plain = Trainer::new(TrainConfig::default(), &crop, device()).unwrap();
        assert!(plain.step_generator(&b).1.codes.is_none());
        assert!(!plain
            .discriminator_vars
            .variables()
            .keys()
            .any(|k| k.starts_with("code")));
    }

    #[test]
    fn checkpoint_resume_gives_the_identical_next_step() {
        let b = batches();
        let crop = FaceCropSpec::default();
        let mut first = Trainer::new(TrainConfig::default(), &crop, device()).unwrap();
        first.step(&b);
        first.step(&b);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        first.save(&path).unwrap();
        let mut resumed = Trainer::new(
            TrainConfig {
                seed: 99,
                ..TrainConfig::default()
            },
            &crop,
            device(),
        )
        .unwrap();
        resumed.load(&path).unwrap();
        assert_eq!(resumed.step_count(), 2);
        let (x, y) = (first.step(&b), resumed.step(&b));
        assert_eq!(x, y, "resumed run continues exactly");

        std::fs::write(&path, b"not a checkpoint").unwrap();
        let e = resumed.load(&path).unwrap_err().to_string();
        assert!(
            e.contains("ckpt.safetensors") && e.contains("earlier checkpoint"),
            "{e}"
        );
    }

    #[test]
    fn a_nan_step_poisons_the_weights_and_reloading_the_checkpoint_heals_them() {
        let b = batches();
        let crop = FaceCropSpec::default();
        let mut tr = Trainer::new(TrainConfig::default(), &crop, device()).unwrap();
        tr.step(&b);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        tr.save(&path).unwrap();
        let good = tr.evaluate(&b);
        let poisoned = [0, 1].map(|p| Batch {
            input: &b[p].input * f64::NAN,
            target: b[p].target.shallow_clone(),
            visible: None,
        });
        let t = tr.step(&poisoned);
        assert!(
            t.iter().all(|t| !t.total.is_finite()),
            "the trainer must see the NaN"
        );
        assert!(
            tr.evaluate(&b).iter().any(|t| !t.total.is_finite()),
            "weights are poisoned"
        );
        tr.load(&path).unwrap();
        assert_eq!(
            tr.evaluate(&b),
            good,
            "reload restores the last good state exactly"
        );
    }

    #[test]
    fn mixed_precision_is_cuda_only_and_still_learns() {
        let b = batches();
        let config = TrainConfig {
            mixed_precision: true,
            lr: 1e-3,
            ..TrainConfig::default()
        };
        let mut tr = Trainer::new(config, &FaceCropSpec::default(), device()).unwrap();
        assert_eq!(tr.mixed_precision(), device().is_cuda());
        let before = tr.evaluate(&b);
        for _ in 0..3 {
            tr.step(&b);
        }
        let after = tr.evaluate(&b);
        for p in 0..2 {
            assert!(
                after[p].l1 < before[p].l1 && after[p].total.is_finite(),
                "person {p}: {:?} -> {:?}",
                before[p],
                after[p]
            );
        }
    }
}
