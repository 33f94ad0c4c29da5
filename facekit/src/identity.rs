//! "Is this the consenting person?" without a neural face recogniser: local binary pattern
//! histograms (LBPH, Ahonen et al. 2004) on the aligned crop, compared with the chi-square
//! distance to the operator's reference photos. No recognition network ships in any package
//! here, and LBPH on aligned crops separates two people in the same lighting reliably enough to
//! drop bystanders; it is a guard, not a biometric.

use image::RgbImage;

/// Cells per side of the histogram grid.
const GRID: u32 = 8;
/// Uniform LBP codes (58) plus one bin for all non-uniform codes.
const BINS: usize = 59;

/// Concatenated, per-cell normalised uniform-LBP histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Lbph(Vec<f32>);

fn uniform_table() -> [u8; 256] {
    let mut table = [58u8; 256];
    let mut next = 0u8;
    for code in 0..=255u8 {
        let transitions = (code ^ code.rotate_left(1)).count_ones();
        if transitions <= 2 {
            table[code as usize] = next;
            next += 1;
        }
    }
    table
}

impl Lbph {
    pub fn of(crop: &RgbImage) -> Self {
        let (w, h) = crop.dimensions();
        let grey: Vec<u8> = crop
            .pixels()
            .map(|p| ((77 * p.0[0] as u32 + 150 * p.0[1] as u32 + 29 * p.0[2] as u32) >> 8) as u8)
            .collect();
        let at = |x: u32, y: u32| grey[(y * w + x) as usize];
        let table = uniform_table();
        let mut hist = vec![0f32; (GRID * GRID) as usize * BINS];
        const RING: [(i32, i32); 8] = [
            (-1, -1),
            (0, -1),
            (1, -1),
            (1, 0),
            (1, 1),
            (0, 1),
            (-1, 1),
            (-1, 0),
        ];
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let c = at(x, y);
                let mut code = 0u8;
                for (bit, (dx, dy)) in RING.iter().enumerate() {
                    if at((x as i32 + dx) as u32, (y as i32 + dy) as u32) >= c {
                        code |= 1 << bit;
                    }
                }
                let cell = (y * GRID / h) * GRID + x * GRID / w;
                hist[cell as usize * BINS + table[code as usize] as usize] += 1.0;
            }
        }
        for cell in hist.chunks_mut(BINS) {
            let total: f32 = cell.iter().sum::<f32>().max(1.0);
            cell.iter_mut().for_each(|v| *v /= total);
        }
        Self(hist)
    }

    /// Chi-square distance averaged over cells: 0 for identical crops, up to 2.
    pub fn distance(&self, other: &Lbph) -> f32 {
        let sum: f32 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| {
                if a + b > 0.0 {
                    (a - b).powi(2) / (a + b)
                } else {
                    0.0
                }
            })
            .sum();
        sum / (GRID * GRID) as f32
    }
}

/// The reference descriptors of the consenting person.
#[derive(Debug, Clone)]
pub struct Reference {
    descriptors: Vec<Lbph>,
}

impl Reference {
    pub fn new(crops: &[RgbImage]) -> Option<Self> {
        (!crops.is_empty()).then(|| Self {
            descriptors: crops.iter().map(Lbph::of).collect(),
        })
    }

    /// Distance to the closest reference crop.
    pub fn distance(&self, crop: &RgbImage) -> f32 {
        let d = Lbph::of(crop);
        self.descriptors
            .iter()
            .map(|r| r.distance(&d))
            .fold(f32::INFINITY, f32::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_table_has_58_uniform_codes() {
        let t = uniform_table();
        assert_eq!(t.iter().filter(|&&v| v < 58).count(), 58);
        assert_eq!(t[0], 0);
        assert_eq!(t[0b0101_0101], 58, "alternating bits are not uniform");
    }

    #[test]
    fn identical_crops_are_at_distance_zero_and_different_texture_is_far() {
        let a = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([((x * 7 + y * 3) % 256) as u8; 3])
        });
        let b = RgbImage::from_fn(64, 64, |x, y| image::Rgb([((x * y) % 97) as u8 * 2; 3]));
        assert_eq!(Lbph::of(&a).distance(&Lbph::of(&a)), 0.0);
        assert!(Lbph::of(&a).distance(&Lbph::of(&b)) > 0.2);
    }
}
