//! What a booth serves, written by the booth itself (`serving.bin` in its state folder) so a
//! restart — even after SIGKILL or a power cut mid-update — comes back to a complete, verified
//! bundle: the serial in service, the one before it, a bundle on trial, the newest serial ever
//! accepted, and the serials that failed their trial.

use serde::{Deserialize, Serialize};

use crate::{decode, encode, ProtoError};

pub const SERVING_KIND: &str = "serving-record";

/// A bundle activated but not yet confirmed: it must process frames cleanly first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    pub serial: u64,
    /// What serves again if the trial fails.
    pub previous: Option<u64>,
    /// Unix seconds when the trial began.
    pub started: u64,
}

/// One thing that happened to the booth's bundles, for the operator's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds.
    pub at: u64,
    pub serial: u64,
    /// `uploaded`, `trial`, `confirmed`, `rolled back: <why>`, `activated`, `removed`.
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingRecord {
    /// The bundle in service; `None` = no bundle yet (faces only).
    pub current: Option<u64>,
    /// The confirmed bundle before it: what a rollback returns to.
    pub previous: Option<u64>,
    pub trial: Option<Trial>,
    /// The newest serial ever accepted by an upload; an older upload is refused.
    pub highest: u64,
    /// Serials that failed their trial.
    pub failed: Vec<u64>,
    /// The latest events, newest last (at most [`ServingRecord::HISTORY`]).
    pub history: Vec<Event>,
}

impl ServingRecord {
    pub const HISTORY: usize = 50;

    pub fn note(&mut self, at: u64, serial: u64, what: impl Into<String>) {
        self.history.push(Event {
            at,
            serial,
            what: what.into(),
        });
        let extra = self.history.len().saturating_sub(Self::HISTORY);
        self.history.drain(..extra);
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtoError> {
        encode(SERVING_KIND, self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode(SERVING_KIND, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_keeps_a_bounded_history() {
        let mut r = ServingRecord {
            current: Some(7),
            trial: Some(Trial {
                serial: 7,
                previous: Some(3),
                started: 1,
            }),
            highest: 7,
            ..Default::default()
        };
        for i in 0..80 {
            r.note(i, 7, "uploaded");
        }
        assert_eq!(r.history.len(), ServingRecord::HISTORY);
        assert_eq!(r.history[0].at, 30);
        let back = ServingRecord::from_bytes(&r.to_bytes().unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(ServingRecord::from_bytes(b"junk").is_err());
    }
}
