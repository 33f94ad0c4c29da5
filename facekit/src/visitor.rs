//! Who is in front of the booth. A swap model is trained on one source person, and its identity
//! shift moves *that* person's place in the shared code onto the target's; a stranger's codes
//! sit elsewhere, so the trained shift leaves them looking like themselves (the demo's model:
//! 0% of a stranger's swaps verified as the target by dlib, 88% with a shift measured on the
//! stranger's own faces). The swap graph reports each face's offset from the trained source's
//! mean code (`identity_offset`); [`VisitorIdentity`] averages those over the visitor's faces
//! so far, and its negation, fed back as `visitor_offset`, moves the visitor's codes onto the
//! target's instead.
//!
//! Visitors queue at a booth: the next one often steps into the very place the last one left
//! within a moment, where neither a gap nor the tracker tells them apart. Their faces do: with
//! a `switch_distance` (the bundle's, measured on the trained people), faces that lie that far
//! from the visitor's mean `switch_faces` times in a row are a new visitor, whose mean then
//! starts from those faces. On the demo's model one person's faces lie a median 23 from their
//! own mean (99% within 44) and 55 or more from anyone else's, so one unusual face, or a few,
//! moves nothing.
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
    /// Identity distance beyond which a face is unlike the visitor (the bundle's
    /// `visitor_switch_distance`); `None`: visitors change only by gaps and the tracker.
    pub switch_distance: Option<f32>,
    /// Consecutive faces beyond `switch_distance` that make a new visitor.
    pub switch_faces: u32,
}

impl Default for VisitorPolicy {
    fn default() -> Self {
        Self {
            forget_after: Duration::from_secs(2),
            // Ten seconds at 25 frames per second: long enough that a held expression is not
            // averaged into the identity and then removed from the swap.
            window: 250,
            switch_distance: None,
            // A fifth of a second at 25 frames per second; on the demo's model, one false
            // switch in 2343 faces of franck, every newcomer found at their fifth face.
            switch_faces: 5,
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
    /// The latest faces, in a row, that lay beyond the switch distance.
    unlike: Vec<Vec<f32>>,
}

impl VisitorIdentity {
    pub fn new(policy: VisitorPolicy) -> Self {
        Self {
            policy,
            sum: Vec::new(),
            weight: 0.0,
            last: None,
            unlike: Vec::new(),
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
    /// ignored. Returns whether this face made a new visitor (see `switch_distance`).
    pub fn observe(&mut self, identity_offset: &[f32], now: Duration) -> bool {
        if identity_offset.is_empty() || identity_offset.iter().any(|v| !v.is_finite()) {
            return false;
        }
        if self.sum.len() != identity_offset.len() {
            self.forget();
            self.sum = vec![0.0; identity_offset.len()];
        }
        let seen = self.last.map_or(now, |t| t.max(now));
        let switched = if self.is_unlike(identity_offset) {
            self.unlike.push(identity_offset.to_vec());
            let newcomer = self.unlike.len() >= self.policy.switch_faces.max(1) as usize;
            if newcomer {
                let faces = std::mem::take(&mut self.unlike);
                self.forget();
                faces.iter().for_each(|f| self.take_in(f));
            }
            newcomer
        } else {
            // The unusual faces were the visitor's own after all (a turn of the head, a grimace).
            for face in std::mem::take(&mut self.unlike) {
                self.take_in(&face);
            }
            self.take_in(identity_offset);
            false
        };
        self.last = Some(seen);
        switched
    }

    /// Whether a face lies beyond the switch distance from the visitor's mean. Never for the
    /// first faces: a mean of fewer than `switch_faces` is not yet the visitor's place.
    fn is_unlike(&self, identity_offset: &[f32]) -> bool {
        let Some(limit) = self.policy.switch_distance else {
            return false;
        };
        if self.weight < f64::from(self.policy.switch_faces.max(1)) {
            return false;
        }
        let squared: f64 = self
            .sum
            .iter()
            .zip(identity_offset)
            .map(|(s, v)| (f64::from(*v) - s / self.weight).powi(2))
            .sum();
        squared.sqrt() > f64::from(limit)
    }

    /// Adds a face to the (fading) mean.
    fn take_in(&mut self, identity_offset: &[f32]) {
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
        self.unlike.clear();
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

    fn switching(distance: f32) -> VisitorIdentity {
        VisitorIdentity::new(VisitorPolicy {
            switch_distance: Some(distance),
            switch_faces: 3,
            ..Default::default()
        })
    }

    #[test]
    fn faces_unlike_the_visitor_in_a_row_are_a_new_visitor() {
        let mut v = switching(5.0);
        let t = Duration::from_secs(7);
        for k in 0..9 {
            assert!(!v.observe(&[(k % 3) as f32, 0.0], t));
        }
        // Someone 10 away takes the place without a gap: the third such face switches.
        assert!(!v.observe(&[10.0, 0.0], t));
        assert!(!v.observe(&[11.0, 0.0], t));
        assert_eq!(
            v.offset(t),
            Some(vec![-1.0, 0.0]),
            "not yet: still the first visitor"
        );
        assert!(v.observe(&[12.0, 0.0], t));
        assert_eq!(
            v.faces(),
            3.0,
            "the newcomer's mean stands on their own faces"
        );
        assert_eq!(v.offset(t), Some(vec![-11.0, 0.0]));
        // And they are now the visitor: their own faces switch nothing.
        assert!(!v.observe(&[14.0, 0.0], t));
    }

    #[test]
    fn a_few_unusual_faces_of_the_visitor_stay_theirs() {
        let mut v = switching(5.0);
        let t = Duration::from_secs(7);
        for _ in 0..10 {
            v.observe(&[0.0], t);
        }
        // Two far faces (a turn of the head), then the visitor as before: no switch, and the
        // two join the mean rather than being lost.
        assert!(!v.observe(&[9.0], t));
        assert!(!v.observe(&[9.0], t));
        assert!(!v.observe(&[0.0], t));
        assert_eq!(v.faces(), 13.0);
        assert_eq!(v.offset(t), Some(vec![-18.0 / 13.0]));
    }

    #[test]
    fn without_a_switch_distance_far_faces_only_fade_in() {
        let mut v = VisitorIdentity::new(VisitorPolicy::default());
        let t = Duration::from_secs(7);
        for _ in 0..10 {
            v.observe(&[0.0], t);
        }
        for _ in 0..10 {
            assert!(!v.observe(&[100.0], t));
        }
        assert_eq!(v.faces(), 20.0);
    }
}
