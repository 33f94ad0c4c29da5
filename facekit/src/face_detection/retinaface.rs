//! RetinaFace-MobileNet0.25 through tract.
//!
//! The ONNX file has symbolic height/width; tract optimises best with concrete shapes, so one
//! optimised plan is built per input size on first use and cached (a booth sees one or two
//! camera resolutions, never many).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use image::RgbImage;
use shared_proto::{ChannelOrder, Normalisation};
use tract_onnx::prelude::*;

use super::{decode, nms, Detection, Prior, PriorLayout};
use crate::{FacekitError, Result};

/// Reference-counted: cached plans are shared across threads cheaply.
type Plan = Arc<TypedSimplePlan>;
/// Per input size and levels: the optimised plan and its priors (both depend only on these).
type SizedPlan = (Plan, Arc<Vec<Prior>>);

/// Which of RetinaFace's three prior levels a search scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Levels {
    /// Strides 8, 16 and 32: faces from ~16 px up (a whole frame, where a visitor may be small).
    All,
    /// Strides 16 and 32 only: faces from ~48 px up (anchors 64 px and larger). At 128² the
    /// stride-8 level's FPN merge, context module and heads are about a third of the network's
    /// time, and a face that fills a tracking crop is never found there.
    Coarse,
}

/// Detector thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceDetectorConfig {
    /// Candidates below this face probability are dropped before NMS.
    pub score_threshold: f32,
    /// Overlap above which the weaker of two boxes is suppressed.
    pub nms_iou: f32,
    /// At most this many candidates enter NMS (keeps worst-case cost bounded).
    pub top_k: usize,
}

impl Default for FaceDetectorConfig {
    fn default() -> Self {
        Self {
            score_threshold: 0.6,
            nms_iou: 0.4,
            top_k: 500,
        }
    }
}

pub struct RetinaFace {
    path: String,
    model: InferenceModel,
    /// The same network without its stride-8 level ([`drop_finest_level`]); `None` when the
    /// graph is not laid out as expected, and then [`Levels::Coarse`] runs the whole network.
    coarse_model: Option<InferenceModel>,
    plans: Mutex<HashMap<(u32, u32, Levels), SizedPlan>>,
    pub config: FaceDetectorConfig,
    // Private: the cached priors are derived from it.
    layout: PriorLayout,
    pub normalisation: Normalisation,
    /// The class output is raw logits (its Softmax was cut off at load, see
    /// [`strip_final_softmax`]); scores are computed only for candidates.
    logits: bool,
}

/// Cuts a `Softmax` that produces graph output `index`, so the output becomes its logits.
/// tract spends ~7% of RetinaFace's time softmaxing all ~4 000 priors at 320×240; the decoder
/// needs the probability of the few candidates above threshold only. Returns whether it cut.
fn strip_final_softmax(proto: &mut tract_onnx::pb::ModelProto, index: usize) -> bool {
    let Some(graph) = proto.graph.as_mut() else {
        return false;
    };
    let Some(out) = graph.output.get(index).map(|o| o.name.clone()) else {
        return false;
    };
    let Some(pos) = graph
        .node
        .iter()
        .position(|n| n.op_type == "Softmax" && n.output.first() == Some(&out))
    else {
        return false;
    };
    let node = graph.node.remove(pos);
    // The logits keep the output's name, so nothing downstream changes.
    let logits = node.input[0].clone();
    for n in graph.node.iter_mut() {
        for o in n.output.iter_mut().filter(|o| **o == logits) {
            *o = out.clone();
        }
        for i in n.input.iter_mut().filter(|i| **i == logits) {
            *i = out.clone();
        }
    }
    true
}

/// Removes the stride-8 level from every output: each output is a `Concat` of the three levels'
/// head outputs, finest first; with its first input gone, the level's FPN merge, context module
/// and heads feed nothing and the plan never runs them. Leaves `proto` alone and returns false
/// unless every output is such a three-way `Concat` (run after [`strip_final_softmax`]).
fn drop_finest_level(proto: &mut tract_onnx::pb::ModelProto) -> bool {
    let Some(graph) = proto.graph.as_mut() else {
        return false;
    };
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let concats: Option<Vec<usize>> = outputs
        .iter()
        .map(|out| {
            graph.node.iter().position(|n| {
                n.op_type == "Concat" && n.input.len() == 3 && n.output.first() == Some(out)
            })
        })
        .collect();
    let Some(concats) = concats.filter(|c| !c.is_empty()) else {
        return false;
    };
    for i in concats {
        graph.node[i].input.remove(0);
    }
    true
}

impl RetinaFace {
    /// Loads the ONNX file. Fails with a message naming the file when it is missing or corrupt.
    pub fn load(path: impl AsRef<Path>, config: FaceDetectorConfig) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(FacekitError::NotFound {
                path: shown,
                hint: "; run `make setup` to extract the RetinaFace detector into models/",
            });
        }
        let bad = |e: TractError| FacekitError::BadModel {
            path: shown.clone(),
            detail: root_cause(&e),
        };
        let onnx = crate::onnx_model::onnx();
        let mut proto = onnx.proto_model_for_path(path).map_err(bad)?;
        let logits = strip_final_softmax(&mut proto, 1);
        let model = onnx.model_for_proto_model(&proto).map_err(bad)?;
        let coarse_model = if drop_finest_level(&mut proto) {
            Some(onnx.model_for_proto_model(&proto).map_err(bad)?)
        } else {
            None
        };
        let det = Self {
            path: shown,
            model,
            coarse_model,
            plans: Mutex::new(HashMap::new()),
            config,
            layout: PriorLayout::default(),
            normalisation: Normalisation::retinaface_bgr(),
            logits,
        };
        Ok(det)
    }

    fn plan(&self, width: u32, height: u32, levels: Levels) -> Result<SizedPlan> {
        let (model, first_level, levels) = match (levels, &self.coarse_model) {
            (Levels::Coarse, Some(coarse)) => (coarse, 1, Levels::Coarse),
            // Without a coarse graph both searches are the same plan: build and cache it once.
            _ => (&self.model, 0, Levels::All),
        };
        let key = (width, height, levels);
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = plans.get(&key) {
            return Ok(p.clone());
        }
        let bad = |e: TractError| FacekitError::BadModel {
            path: self.path.clone(),
            detail: root_cause(&e),
        };
        let plan = model
            .clone()
            .with_input_fact(0, f32::fact([1, 3, height as usize, width as usize]).into())
            .and_then(crate::tract_ops::optimise)
            .and_then(|m| m.into_runnable())
            .map_err(bad)?;
        let priors = self.layout.priors_from(width, height, first_level);
        let entry = (plan, Arc::new(priors));
        plans.insert(key, entry.clone());
        Ok(entry)
    }

    /// Builds (and keeps) the plan for `width`×`height` searches with `levels` now, so that the
    /// first such search does not pay for it (hundreds of ms on a board, seconds under qemu).
    pub fn prepare(&self, width: u32, height: u32, levels: Levels) -> Result<()> {
        self.plan(width, height, levels).map(|_| ())
    }

    /// Per-node costs of the plan a `width`×`height` search with `levels` runs (the booth
    /// bench's achieved-rate table and board estimates).
    pub fn profile(
        &self,
        width: u32,
        height: u32,
        levels: Levels,
        runs: usize,
    ) -> Result<Vec<crate::onnx_model::OpCost>> {
        let (plan, _) = self.plan(width, height, levels)?;
        crate::onnx_model::profile_plan(&plan, &[1, 3, height as usize, width as usize], runs)
    }

    /// Network input for `frame`: NCHW float in the detector's channel order, means subtracted.
    pub fn preprocess(&self, frame: &RgbImage) -> Tensor {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let n = &self.normalisation;
        let src_channel = |c: usize| match n.order {
            ChannelOrder::Rgb => c,
            ChannelOrder::Bgr => 2 - c,
        };
        let mut data = vec![0f32; 3 * w * h];
        let raw = frame.as_raw();
        for c in 0..3 {
            let (mean, std, sc) = (n.mean[c], n.std[c], src_channel(c));
            let plane = &mut data[c * w * h..(c + 1) * w * h];
            for (i, v) in plane.iter_mut().enumerate() {
                *v = (raw[i * 3 + sc] as f32 - mean) / std;
            }
        }
        tract_ndarray::Array4::from_shape_vec((1, 3, h, w), data)
            .expect("shape matches data")
            .into()
    }

    /// Faces in `frame`, best first, in frame pixels.
    pub fn detect(&self, frame: &RgbImage) -> Result<Vec<Detection>> {
        self.detect_levels(frame, Levels::All)
    }

    /// Faces in `frame` found by the prior levels `levels`, best first, in frame pixels.
    pub fn detect_levels(&self, frame: &RgbImage, levels: Levels) -> Result<Vec<Detection>> {
        let (w, h) = frame.dimensions();
        let (plan, priors) = self.plan(w, h, levels)?;
        let outputs = plan
            .run(tvec!(self.preprocess(frame).into()))
            .map_err(|e| FacekitError::Inference(root_cause(&e)))?;
        let view = |i: usize| {
            outputs[i]
                .to_plain_array_view::<f32>()
                .map_err(|e| FacekitError::Inference(root_cause(&e)))
        };
        let (loc, conf, lms) = (view(0)?, view(1)?, view(2)?);
        let loc = loc
            .as_slice()
            .ok_or_else(|| FacekitError::Inference("loc not contiguous".into()))?;
        let conf = conf
            .as_slice()
            .ok_or_else(|| FacekitError::Inference("conf not contiguous".into()))?;
        let lms = lms
            .as_slice()
            .ok_or_else(|| FacekitError::Inference("landmarks not contiguous".into()))?;

        if loc.len() != priors.len() * 4
            || conf.len() != priors.len() * 2
            || lms.len() != priors.len() * 10
        {
            return Err(FacekitError::Inference(format!(
                "{}: output has {} priors, expected {} for {w}x{h}; is this the MobileNet-0.25 RetinaFace?",
                self.path,
                conf.len() / 2,
                priors.len()
            )));
        }
        let t = self.config.score_threshold.clamp(1e-6, 1.0 - 1e-6);
        // Two-class softmax: p(face) = sigmoid(l1 − l0); compare logits against logit(t).
        let min_margin = (t / (1.0 - t)).ln();
        let mut candidates: Vec<(usize, f32)> = if self.logits {
            (0..priors.len())
                .filter_map(|i| {
                    let margin = conf[i * 2 + 1] - conf[i * 2];
                    (margin >= min_margin).then(|| (i, 1.0 / (1.0 + (-margin).exp())))
                })
                .filter(|&(_, s)| s.is_finite())
                .collect()
        } else {
            (0..priors.len())
                .map(|i| (i, conf[i * 2 + 1]))
                .filter(|&(_, s)| s.is_finite() && s >= self.config.score_threshold)
                .collect()
        };
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(self.config.top_k);
        let dets = candidates
            .into_iter()
            .map(|(i, s)| {
                decode(
                    &priors[i],
                    &loc[i * 4..i * 4 + 4],
                    &lms[i * 10..i * 10 + 10],
                    s,
                    self.layout.variances,
                )
            })
            .collect();
        Ok(nms(dets, self.config.nms_iou))
    }
}

fn root_cause(e: &TractError) -> String {
    e.root_cause().to_string()
}
