//! Which side of a run a dataset, decoder or swap direction belongs to. A run trains two people:
//! A (decoder 0) and B (decoder 1); a swap "to B" renders A's face with B's decoder.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
pub enum Person {
    #[value(name = "A")]
    A,
    #[value(name = "B")]
    B,
}

impl Person {
    pub const BOTH: [Person; 2] = [Person::A, Person::B];

    /// Decoder (and dataset) index in a run.
    pub fn index(self) -> usize {
        match self {
            Person::A => 0,
            Person::B => 1,
        }
    }

    pub fn from_index(index: usize) -> Self {
        if index == 0 {
            Person::A
        } else {
            Person::B
        }
    }

    pub fn other(self) -> Self {
        match self {
            Person::A => Person::B,
            Person::B => Person::A,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Person::A => "A",
            Person::B => "B",
        }
    }
}

impl std::fmt::Display for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
