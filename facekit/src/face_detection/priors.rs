//! RetinaFace priors ("anchors") and the SSD-style offset decoding with variances.
//!
//! Order matters: the network emits one row per prior, level by level (stride 8, 16, 32), and
//! within a level row-major over the feature map with the level's anchor sizes innermost.

use super::Detection;

/// The anchor configuration the Pytorch_Retinaface MobileNet-0.25 weights were trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorLayout {
    pub strides: [u32; 3],
    pub sizes: [[f32; 2]; 3],
    /// Centre and size variances.
    pub variances: [f32; 2],
}

impl Default for PriorLayout {
    fn default() -> Self {
        Self {
            strides: [8, 16, 32],
            sizes: [[16.0, 32.0], [64.0, 128.0], [256.0, 512.0]],
            variances: [0.1, 0.2],
        }
    }
}

/// A square prior in input-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub cx: f32,
    pub cy: f32,
    pub size: f32,
}

impl PriorLayout {
    /// All priors for an input of `width`×`height`, in network output order.
    pub fn priors(&self, width: u32, height: u32) -> Vec<Prior> {
        self.priors_from(width, height, 0)
    }

    /// The priors of levels `first_level..` only (a network cut to its coarser levels).
    pub fn priors_from(&self, width: u32, height: u32, first_level: usize) -> Vec<Prior> {
        let mut out = Vec::with_capacity(self.count(width, height));
        let levels = self.strides.iter().zip(self.sizes.iter()).skip(first_level);
        for (&stride, sizes) in levels {
            // Stride-2 convolutions with padding round up, so do the feature maps.
            let (nx, ny) = (width.div_ceil(stride), height.div_ceil(stride));
            for y in 0..ny {
                for x in 0..nx {
                    for &size in sizes {
                        out.push(Prior {
                            cx: (x as f32 + 0.5) * stride as f32,
                            cy: (y as f32 + 0.5) * stride as f32,
                            size,
                        });
                    }
                }
            }
        }
        out
    }

    pub fn count(&self, width: u32, height: u32) -> usize {
        self.strides
            .iter()
            .zip(self.sizes.iter())
            .map(|(&s, sz)| (width.div_ceil(s) * height.div_ceil(s)) as usize * sz.len())
            .sum()
    }
}

/// Decodes one prior's raw outputs (`loc` 4 values, `landmarks` 10 values) into a detection.
pub fn decode(
    prior: &Prior,
    loc: &[f32],
    landmarks: &[f32],
    score: f32,
    variances: [f32; 2],
) -> Detection {
    let [vc, vs] = variances;
    let cx = prior.cx + loc[0] * vc * prior.size;
    let cy = prior.cy + loc[1] * vc * prior.size;
    let w = prior.size * (loc[2] * vs).exp();
    let h = prior.size * (loc[3] * vs).exp();
    let mut pts = [[0.0f32; 2]; 5];
    for (i, p) in pts.iter_mut().enumerate() {
        *p = [
            prior.cx + landmarks[2 * i] * vc * prior.size,
            prior.cy + landmarks[2 * i + 1] * vc * prior.size,
        ];
    }
    Detection {
        bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
        score,
        landmarks: pts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_count_and_order_follow_retinaface() {
        let layout = PriorLayout::default();
        // 640x480: 80*60*2 + 40*30*2 + 20*15*2.
        assert_eq!(layout.count(640, 480), 12_600);
        let p = layout.priors(176, 144);
        assert_eq!(p.len(), layout.count(176, 144));
        // First level, first cell: both sizes share the centre, sizes innermost.
        assert_eq!(
            p[0],
            Prior {
                cx: 4.0,
                cy: 4.0,
                size: 16.0
            }
        );
        assert_eq!(
            p[1],
            Prior {
                cx: 4.0,
                cy: 4.0,
                size: 32.0
            }
        );
        // Row-major: the next cell is one stride to the right.
        assert_eq!(p[2].cx, 12.0);
        // 176/8 = 22 cells per row, so prior 44 starts the second row.
        assert_eq!((p[44].cx, p[44].cy), (4.0, 12.0));
        // Non-divisible sizes round up (144/32 = 4.5 -> 5 rows).
        let last = p.last().unwrap();
        assert_eq!(
            (last.cx, last.cy, last.size),
            (16.0 * 11.0, 16.0 * 9.0, 512.0)
        );
    }

    #[test]
    fn zero_offsets_decode_to_the_prior_itself() {
        let prior = Prior {
            cx: 40.0,
            cy: 24.0,
            size: 32.0,
        };
        let d = decode(&prior, &[0.0; 4], &[0.0; 10], 0.9, [0.1, 0.2]);
        assert_eq!(d.bbox, [24.0, 8.0, 56.0, 40.0]);
        assert!(d.landmarks.iter().all(|p| *p == [40.0, 24.0]));
    }

    #[test]
    fn offsets_scale_by_variance_and_prior_size() {
        let prior = Prior {
            cx: 100.0,
            cy: 100.0,
            size: 64.0,
        };
        let loc = [1.0, -1.0, (2.0f32).ln() / 0.2, 0.0];
        let d = decode(
            &prior,
            &loc,
            &[1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0],
            1.0,
            [0.1, 0.2],
        );
        // Centre moves by 0.1*64 = 6.4 px; width doubles to 128.
        let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
        assert!((cx - 106.4).abs() < 1e-4 && (cy - 93.6).abs() < 1e-4);
        assert!((d.width() - 128.0).abs() < 1e-3 && (d.height() - 64.0).abs() < 1e-3);
        assert!(
            (d.landmarks[0][0] - 106.4).abs() < 1e-4 && (d.landmarks[0][1] - 112.8).abs() < 1e-4
        );
        assert!((d.landmarks[4][0] - 93.6).abs() < 1e-4 && (d.landmarks[4][1] - 87.2).abs() < 1e-4);
    }
}
