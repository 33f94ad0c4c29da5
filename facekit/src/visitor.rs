//! Who is in front of the booth. A swap model is trained on one source person, and its identity
//! shift moves *that* person's place in the shared code onto the target's; a stranger's codes
//! sit elsewhere, so the trained shift leaves them looking like themselves (the demo's model:
//! 0% of a stranger's swaps verified as the target by dlib, 88% with a shift measured on the
//! stranger's own faces). The swap graph reports each face's offset from the trained source's
//! mean code (`identity_offset`); [`VisitorIdentity`] averages those over the visitor's faces
//! so far, and its negation, fed back as `visitor_offset`, moves the visitor's codes onto the
//! target's instead.
//!
//! Time here is the stream's clock (a camera's capture time since the booth started, a file's
//! frame time), never the time a frame happened to be processed: a slow board, or the same
//! clip under emulation, must follow the same visitors as a fast one. With several workers a
//! frame can be swapped before the frame ahead of it has added its face to the mean, so the
//! mean a frame gets (never the visitor it is taken for) depends on scheduling.

use std::time::Duration;

/// How the booth follows visitors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisitorPolicy {
    /// A face this long after the last one is a new visitor: the last one is forgotten.
    pub forget_after: Duration,
    /// Faces the mean is taken over; beyond that older faces fade (an exponential mean of this
    /// length), so a visitor who takes over without a gap is followed within a few seconds.
    pub window: u32,
}

impl Default for VisitorPolicy {
    fn default() -> Self {
        Self {
            forget_after: Duration::from_secs(2),
            // Ten seconds at 25 frames per second: long enough that a held expression is not
            // averaged into the identity and then removed from the swap.
            window: 250,
        }
    }
}

/// The running mean identity offset of the visitor's faces.
#[derive(Debug, Clone)]
pub struct VisitorIdentity {
    policy: VisitorPolicy,
    sum: Vec<f64>,
    weight: f64,
    /// Stream time of the latest face taken in.
    last: Option<Duration>,
}

impl VisitorIdentity {
    pub fn new(policy: VisitorPolicy) -> Self {
        Self {
            policy,
            sum: Vec::new(),
            weight: 0.0,
            last: None,
        }
    }

    /// The `visitor_offset` for a face seen at stream time `now`: minus the visitor's mean
    /// identity offset. `None` for a new visitor (no face yet, or the last more than
    /// `forget_after` before `now`, which forgets the previous visitor).
    pub fn offset(&mut self, now: Duration) -> Option<Vec<f32>> {
        let gone = self
            .last
            .is_some_and(|t| now.saturating_sub(t) > self.policy.forget_after);
        if gone {
            self.forget();
        }
        (self.weight > 0.0).then(|| self.sum.iter().map(|s| (-s / self.weight) as f32).collect())
    }

    /// Takes in one face's `identity_offset`, seen at stream time `now`. Non-finite offsets are
    /// ignored.
    pub fn observe(&mut self, identity_offset: &[f32], now: Duration) {
        if identity_offset.is_empty() || identity_offset.iter().any(|v| !v.is_finite()) {
            return;
        }
        if self.sum.len() != identity_offset.len() {
            self.forget();
            self.sum = vec![0.0; identity_offset.len()];
        }
        let window = f64::from(self.policy.window.max(1));
        if self.weight >= window {
            let keep = (window - 1.0) / window;
            self.sum.iter_mut().for_each(|s| *s *= keep);
            self.weight *= keep;
        }
        for (s, v) in self.sum.iter_mut().zip(identity_offset) {
            *s += f64::from(*v);
        }
        self.weight += 1.0;
        self.last = Some(self.last.map_or(now, |t| t.max(now)));
    }

    /// How many faces the mean stands on (fractional once older faces fade).
    pub fn faces(&self) -> f64 {
        self.weight
    }

    /// Forgets the visitor.
    pub fn forget(&mut self) {
        self.sum.iter_mut().for_each(|s| *s = 0.0);
        self.weight = 0.0;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_minus_the_mean_of_the_faces_seen() {
        let mut v = VisitorIdentity::new(VisitorPolicy::default());
        let t = Duration::from_secs(7);
        assert_eq!(v.offset(t), None, "a new visitor");
        v.observe(&[1.0, -2.0], t);
        v.observe(&[3.0, 0.0], t + Duration::from_millis(40));
        assert_eq!(
            v.offset(t + Duration::from_millis(80)),
            Some(vec![-2.0, 1.0])
        );
        assert_eq!(v.faces(), 2.0);
        // Broken outputs do not move it.
        v.observe(&[f32::NAN, 1.0], t + Duration::from_millis(90));
        assert_eq!(v.faces(), 2.0);
    }

    #[test]
    fn a_gap_longer_than_forget_after_starts_a_new_visitor() {
        let policy = VisitorPolicy::default();
        let mut v = VisitorIdentity::new(policy);
        let t = Duration::from_secs(7);
        v.observe(&[5.0], t);
        assert!(v.offset(t + policy.forget_after).is_some());
        let later = t + policy.forget_after + Duration::from_millis(1);
        assert_eq!(v.offset(later), None);
        v.observe(&[1.0], later);
        assert_eq!(v.offset(later), Some(vec![-1.0]));
    }

    #[test]
    fn beyond_the_window_a_new_visitor_takes_over_without_a_gap() {
        let policy = VisitorPolicy {
            window: 10,
            ..Default::default()
        };
        let mut v = VisitorIdentity::new(policy);
        let t = Duration::from_secs(7);
        for _ in 0..100 {
            v.observe(&[4.0], t);
        }
        assert!(v.faces() <= 10.0);
        // Thirty faces of someone at 0: a cumulative mean would still read 3.08.
        for _ in 0..30 {
            v.observe(&[0.0], t);
        }
        let now = -v.offset(t).unwrap()[0];
        assert!(now < 0.3, "{now}");
    }
}
