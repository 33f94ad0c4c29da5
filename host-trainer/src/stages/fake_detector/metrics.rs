//! Detector metrics on `(score, is_fake)` pairs: AUC, accuracy at a threshold, log loss, ROC.

/// Area under the ROC curve: the probability that a random fake scores above a random real
/// face (ties count half). `NaN` without both classes.
pub fn auc(scored: &[(f32, bool)]) -> f64 {
    let mut v: Vec<(f32, bool)> = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (pos, neg) = (
        v.iter().filter(|s| s.1).count() as f64,
        v.iter().filter(|s| !s.1).count() as f64,
    );
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    // Mann–Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += avg_rank * v[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

pub fn accuracy(scored: &[(f32, bool)], threshold: f32) -> f64 {
    let right = scored
        .iter()
        .filter(|(s, fake)| (*s >= threshold) == *fake)
        .count();
    right as f64 / scored.len().max(1) as f64
}

/// The threshold at the equal-error point: where the share of real faces called fake is
/// closest to the share of fakes called real. Scores are probabilities, so the midpoint between
/// neighbouring scores is returned. 0.5 without both classes.
pub fn eer_threshold(scored: &[(f32, bool)]) -> f32 {
    let pos = scored.iter().filter(|s| s.1).count();
    let neg = scored.len() - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold just above v[i]: v[..=i] are called real.
    let (mut missed_fakes, mut kept_reals) = (0usize, 0usize);
    let mut best = (f64::INFINITY, 0.5f32);
    for i in 0..v.len() {
        if v[i].1 {
            missed_fakes += 1;
        } else {
            kept_reals += 1;
        }
        if v.get(i + 1).is_some_and(|n| n.0 == v[i].0) {
            continue;
        }
        let fnr = missed_fakes as f64 / pos as f64;
        let fpr = (neg - kept_reals) as f64 / neg as f64;
        let t = match v.get(i + 1) {
            Some(n) => (v[i].0 + n.0) / 2.0,
            None => (v[i].0 + 1.0) / 2.0,
        };
        let gap = (fnr - fpr).abs();
        if gap < best.0 {
            best = (gap, t);
        }
    }
    best.1
}

/// Equal-error rate: where the share of real faces called fake equals the share of fakes
/// called real (the mean of the two at the threshold where they are closest). `NaN` without
/// both classes.
pub fn eer(scored: &[(f32, bool)]) -> f64 {
    let pos = scored.iter().filter(|s| s.1).count();
    let neg = scored.len() - pos;
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    let t = eer_threshold(scored);
    let fnr = scored.iter().filter(|s| s.1 && s.0 < t).count() as f64 / pos as f64;
    let fpr = scored.iter().filter(|s| !s.1 && s.0 >= t).count() as f64 / neg as f64;
    (fnr + fpr) / 2.0
}

/// Average precision (area under precision–recall, fakes as positives), ties taken together.
/// `NaN` without fakes.
pub fn average_precision(scored: &[(f32, bool)]) -> f64 {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = v.iter().filter(|s| s.1).count();
    if pos == 0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        let mut new_tp = 0;
        while j < v.len() && v[j].0 == v[i].0 {
            new_tp += v[j].1 as usize;
            j += 1;
        }
        tp += new_tp;
        seen = j;
        ap += new_tp as f64 / pos as f64 * tp as f64 / seen as f64;
        i = j;
    }
    debug_assert_eq!(seen, v.len());
    ap
}

/// Clip-level scores: the mean frame score of each `(clip key, is_fake)` group, as SBI and
/// DeepfakeBench score a video by the mean of its frames.
pub fn clip_level<K: Ord + Copy>(scored: &[(K, f32, bool)]) -> Vec<(f32, bool)> {
    let mut groups: std::collections::BTreeMap<(K, bool), (f64, usize)> = Default::default();
    for &(key, score, fake) in scored {
        let g = groups.entry((key, fake)).or_default();
        g.0 += score as f64;
        g.1 += 1;
    }
    groups
        .into_iter()
        .map(|((_, fake), (sum, n))| ((sum / n as f64) as f32, fake))
        .collect()
}

pub fn log_loss(scored: &[(f32, bool)]) -> f64 {
    let sum: f64 = scored
        .iter()
        .map(|&(s, fake)| {
            let p = (s as f64).clamp(1e-7, 1.0 - 1e-7);
            -if fake { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    sum / scored.len().max(1) as f64
}

/// ROC points `(false-positive rate, true-positive rate)` from the strictest threshold down.
pub fn roc(scored: &[(f32, bool)]) -> Vec<(f64, f64)> {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = v.iter().filter(|s| s.1).count().max(1) as f64;
    let neg = v.iter().filter(|s| !s.1).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = vec![(0.0, 0.0)];
    for (i, &(s, fake)) in v.iter().enumerate() {
        if fake {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if v.get(i + 1).is_none_or(|n| n.0 != s) {
            out.push((fp / neg, tp / pos));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_equal_error_threshold_separates_separable_scores_and_balances_overlap() {
        let separable = [(0.9, true), (0.7, true), (0.4, false), (0.1, false)];
        let t = eer_threshold(&separable);
        assert!(t > 0.4 && t < 0.7, "{t}");
        assert_eq!(accuracy(&separable, t), 1.0);
        // Shifted scores (every real above 0.5) still get a threshold between the classes.
        let shifted = [(0.99, true), (0.97, true), (0.9, false), (0.8, false)];
        let t = eer_threshold(&shifted);
        assert!(t > 0.9 && t < 0.97, "{t}");
        // One real above one fake: the best threshold errs once on each side or not at all.
        let overlap = [(0.9, true), (0.6, false), (0.5, true), (0.2, false)];
        assert!(accuracy(&overlap, eer_threshold(&overlap)) >= 0.5);
    }

    #[test]
    fn metrics_of_known_cases() {
        let perfect = [(0.9, true), (0.8, true), (0.2, false), (0.1, false)];
        assert_eq!(auc(&perfect), 1.0);
        assert_eq!(accuracy(&perfect, 0.5), 1.0);
        let inverted: Vec<_> = perfect.iter().map(|&(s, f)| (s, !f)).collect();
        assert_eq!(auc(&inverted), 0.0);
        // One fake below one real: 3 of 4 pairs ordered right.
        let mixed = [(0.9, true), (0.3, true), (0.5, false), (0.1, false)];
        assert!((auc(&mixed) - 0.75).abs() < 1e-12);
        let ties = [(0.5, true), (0.5, false)];
        assert!((auc(&ties) - 0.5).abs() < 1e-12);
        assert!(auc(&[(0.5, true)]).is_nan());
        assert!((log_loss(&[(0.5, true)]) - 2f64.ln()).abs() < 1e-9);
        assert_eq!(eer(&perfect), 0.0);
        assert_eq!(average_precision(&perfect), 1.0);
        // Fakes ranked 1st and 3rd: precision 1 at the first, 2/3 at the second.
        assert!((average_precision(&mixed) - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((eer(&mixed) - 0.5).abs() < 1e-12, "{}", eer(&mixed));
        assert!(eer(&inverted) >= 0.5, "{}", eer(&inverted));
        // Two clips per class: means 0.8/0.7 fake, 0.2/0.1 real.
        let clips = clip_level(&[
            (0, 0.9, true),
            (0, 0.7, true),
            (1, 0.7, true),
            (0, 0.3, false),
            (0, 0.1, false),
            (1, 0.1, false),
        ]);
        assert_eq!(clips.len(), 4);
        assert_eq!(auc(&clips), 1.0);
        let near = |want: f32, fake: bool| {
            clips
                .iter()
                .any(|&(s, f)| f == fake && (s - want).abs() < 1e-6)
        };
        assert!(near(0.8, true) && near(0.2, false), "{clips:?}");
        let r = roc(&perfect);
        assert_eq!(r.first(), Some(&(0.0, 0.0)));
        assert_eq!(r.last(), Some(&(1.0, 1.0)));
        assert!(r.contains(&(0.0, 1.0)));
    }
}
