//! Synthetic occluders, for a learned mask that leaves a hand in front of the face alone.
//!
//! DeepFaceLab trains its XSeg masks on obstructions people outlined by hand; we have no such
//! labels, so we paste shapes whose outline we know: a hand (a palm and up to four fingers) or an
//! object (a microphone, a cup: one rounded bar) reaching into the crop from below or a side,
//! in another face's skin colour or an arbitrary one, shaded and grainy. The trainer then
//! reconstructs the face only where it shows and fits the mask to the face ellipse *less* the
//! occluder, so the swap's mask learns to leave occluders out and `--mask visible` keeps them
//! in the picture.

use image::{GrayImage, Rgb, RgbImage};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal};

/// A segment with a radius: fingers, palms and bars are all capsules.
#[derive(Debug, Clone, Copy)]
struct Capsule {
    from: [f32; 2],
    to: [f32; 2],
    radius: f32,
}

impl Capsule {
    fn contains(&self, p: [f32; 2]) -> bool {
        let (dx, dy) = (self.to[0] - self.from[0], self.to[1] - self.from[1]);
        let len2 = (dx * dx + dy * dy).max(1e-6);
        let t = (((p[0] - self.from[0]) * dx + (p[1] - self.from[1]) * dy) / len2).clamp(0.0, 1.0);
        let (cx, cy) = (self.from[0] + t * dx, self.from[1] + t * dy);
        (p[0] - cx).hypot(p[1] - cy) <= self.radius
    }
}

/// Where the occluder comes in from and which way it reaches, in crop pixels.
fn entry(size: f32, rng: &mut impl Rng) -> ([f32; 2], [f32; 2]) {
    let centre = [size / 2.0, size * 0.55];
    // Hands and microphones come from below far more often than from a side.
    let start = match rng.random_range(0..4u8) {
        0 => [0.0, rng.random_range(0.45..1.0) * size],
        1 => [size, rng.random_range(0.45..1.0) * size],
        _ => [rng.random_range(0.1..0.9) * size, size],
    };
    let (dx, dy) = (centre[0] - start[0], centre[1] - start[1]);
    let turn = rng.random_range(-0.5f32..0.5);
    let (s, c) = turn.sin_cos();
    let len = dx.hypot(dy).max(1e-3);
    let dir = [(dx * c - dy * s) / len, (dx * s + dy * c) / len];
    (start, dir)
}

fn hand(size: f32, rng: &mut impl Rng) -> Vec<Capsule> {
    let (start, dir) = entry(size, rng);
    let reach = rng.random_range(0.2..0.45) * size;
    let palm_end = [start[0] + dir[0] * reach, start[1] + dir[1] * reach];
    let mut parts = vec![Capsule {
        from: [start[0] - dir[0] * size, start[1] - dir[1] * size],
        to: palm_end,
        radius: rng.random_range(0.09..0.16) * size,
    }];
    let fingers = rng.random_range(0..=4);
    let spread = rng.random_range(0.15f32..0.35);
    let width = rng.random_range(0.025..0.045) * size;
    for k in 0..fingers {
        let a = (k as f32 - (fingers as f32 - 1.0) / 2.0) * spread + rng.random_range(-0.1..0.1);
        let (s, c) = a.sin_cos();
        let d = [dir[0] * c - dir[1] * s, dir[0] * s + dir[1] * c];
        let len = rng.random_range(0.12..0.25) * size;
        parts.push(Capsule {
            from: palm_end,
            to: [palm_end[0] + d[0] * len, palm_end[1] + d[1] * len],
            radius: width,
        });
    }
    parts
}

fn object(size: f32, rng: &mut impl Rng) -> Vec<Capsule> {
    let (start, dir) = entry(size, rng);
    let reach = rng.random_range(0.25..0.55) * size;
    vec![Capsule {
        from: [start[0] - dir[0] * size, start[1] - dir[1] * size],
        to: [start[0] + dir[0] * reach, start[1] + dir[1] * reach],
        radius: rng.random_range(0.05..0.14) * size,
    }]
}

/// The median colour of `face` under `ellipse`: the donor's skin, roughly.
fn skin_colour(face: &RgbImage, ellipse: &GrayImage) -> [f32; 3] {
    let mut channels: [Vec<u8>; 3] = Default::default();
    for (p, m) in face.pixels().zip(ellipse.pixels()) {
        if m.0[0] > 127 {
            for (c, v) in channels.iter_mut().zip(p.0) {
                c.push(v);
            }
        }
    }
    channels.map(|mut c| {
        if c.is_empty() {
            return 128.0;
        }
        let mid = c.len() / 2;
        *c.select_nth_unstable(mid).1 as f32
    })
}

/// Paints an occluder over `face` and returns its coverage (255 = fully hidden), in `face`'s
/// pixels. Half the occluders are hands in `donor`'s skin colour (a face of the training set,
/// `ellipse` its face region), the rest objects in any colour.
pub fn paste(
    face: &mut RgbImage,
    donor: &RgbImage,
    ellipse: &GrayImage,
    rng: &mut impl Rng,
) -> GrayImage {
    let (w, h) = face.dimensions();
    let size = w.min(h) as f32;
    let skin = rng.random::<f32>() < 0.5;
    let (parts, base) = if skin {
        let tone = rng.random_range(0.8f32..1.2);
        (
            hand(size, rng),
            skin_colour(donor, ellipse).map(|v| v * tone),
        )
    } else {
        (
            object(size, rng),
            [0; 3].map(|_| rng.random_range(0.0f32..255.0)),
        )
    };
    // Light falls across it: a linear shade of up to ±15% along a random direction.
    let (gs, gc) = rng.random_range(0.0f32..std::f32::consts::TAU).sin_cos();
    let shade = rng.random_range(0.0f32..0.15);
    let grain = Normal::new(0.0f32, rng.random_range(1.0f32..6.0)).expect("valid sigma");
    // 4×4 samples per pixel: antialiased edges, as a camera sees them.
    const SUB: usize = 4;
    let mut coverage = GrayImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let inside = (0..SUB * SUB)
                .filter(|k| {
                    let p = [
                        x as f32 + (k % SUB) as f32 / SUB as f32 + 0.5 / SUB as f32,
                        y as f32 + (k / SUB) as f32 / SUB as f32 + 0.5 / SUB as f32,
                    ];
                    parts.iter().any(|c| c.contains(p))
                })
                .count();
            if inside == 0 {
                continue;
            }
            let alpha = inside as f32 / (SUB * SUB) as f32;
            coverage.put_pixel(x, y, image::Luma([(alpha * 255.0).round() as u8]));
            let along = ((x as f32 - size / 2.0) * gc + (y as f32 - size / 2.0) * gs) / size;
            let light = 1.0 + shade * 2.0 * along;
            let noise = grain.sample(rng);
            let px = face.get_pixel_mut(x, y);
            *px = Rgb(std::array::from_fn(|c| {
                let occ = (base[c] * light + noise).clamp(0.0, 255.0);
                (px.0[c] as f32 * (1.0 - alpha) + occ * alpha).round() as u8
            }));
        }
    }
    coverage
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn an_occluder_covers_part_of_the_face_from_an_edge_and_changes_only_what_it_covers() {
        let spec = shared_proto::FaceCropSpec::default();
        let ellipse = facekit::forensics::face_mask(spec.size, &spec.template_px());
        let face = RgbImage::from_fn(spec.size, spec.size, |x, y| {
            Rgb([(x * 3) as u8, (y * 3) as u8, 90])
        });
        let donor = RgbImage::from_pixel(spec.size, spec.size, Rgb([200, 150, 120]));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let face_px = ellipse.pixels().filter(|m| m.0[0] > 127).count() as f32;
        let mut shares = Vec::new();
        for _ in 0..200 {
            let mut painted = face.clone();
            let cover = paste(&mut painted, &donor, &ellipse, &mut rng);
            for ((a, b), c) in face.pixels().zip(painted.pixels()).zip(cover.pixels()) {
                if c.0[0] == 0 {
                    assert_eq!(a, b, "a pixel the occluder does not cover changed");
                }
            }
            let (w, h) = cover.dimensions();
            let on_edge = (0..w).any(|x| cover.get_pixel(x, h - 1).0[0] > 0)
                || (0..h)
                    .any(|y| cover.get_pixel(0, y).0[0] > 0 || cover.get_pixel(w - 1, y).0[0] > 0);
            assert!(on_edge, "an occluder reaches in from outside the crop");
            let hidden = cover
                .pixels()
                .zip(ellipse.pixels())
                .filter(|(c, m)| c.0[0] > 127 && m.0[0] > 127)
                .count() as f32;
            shares.push(hidden / face_px);
        }
        shares.sort_by(f32::total_cmp);
        let median = shares[shares.len() / 2];
        // Most hide a real part of the face, few hide all of it.
        assert!(
            (0.05..0.6).contains(&median),
            "median share of the face hidden {median}"
        );
        assert!(shares[shares.len() * 9 / 10] < 0.9, "{shares:?}");
    }
}
