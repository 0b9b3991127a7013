//! fmeval 1.0.3's semantic-robustness perturbations, bit for bit (METRICS.md section 8):
//! butter-finger typos, random upper case and whitespace added or removed, each drawing from
//! numpy's `default_rng(5)` ([`crate::pcg64`]) exactly as fmeval's `ButterFinger`,
//! `RandomUppercase` and `AddRemoveWhitespace` transforms do, five perturbed texts per input.
//!
//! One [`Perturber`] is one generator stream: perturbing records one after the other with it
//! continues the stream, as fmeval's `evaluate_sample` in a loop does (fmeval's own `evaluate()`
//! splits records over Ray workers with a copy of the generator each, which no one can
//! reproduce). Runs therefore perturb records in selection order with one perturber per
//! (run, perturbation type).
//!
//! Invariants: pure; deterministic for a given sequence of inputs; work and memory are linear in
//! the text's length. Depends on [`crate::pcg64`] and [`crate::metrics::normalize`] only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::metrics::normalize::is_py_whitespace;
use crate::pcg64::Pcg64;

/// How many perturbed texts each input gives (fmeval's `num_perturbations`).
pub const NUM_PERTURBATIONS: usize = 5;

/// `ButterFinger`'s `perturbation_prob`.
const BUTTER_FINGER_PROBABILITY: f64 = 0.1;
/// `RandomUppercase`'s `uppercase_fraction`.
const UPPERCASE_FRACTION: f64 = 0.1;
/// `AddRemoveWhitespace`'s `remove_prob`.
const REMOVE_PROBABILITY: f64 = 0.1;
/// `AddRemoveWhitespace`'s `add_prob`.
const ADD_PROBABILITY: f64 = 0.05;

/// A perturbation type, named as fmeval's `perturbation_type` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Perturbation {
    /// Keyboard typos: each letter replaced by a QWERTY neighbour with probability 0.1.
    ButterFinger,
    /// A tenth of the characters upper-cased.
    RandomUpperCase,
    /// Whitespace removed with probability 0.1, a space added after other characters with 0.05.
    WhitespaceAddRemove,
}

impl Perturbation {
    /// Every type, in a stable order.
    pub const ALL: [Perturbation; 3] = [
        Perturbation::ButterFinger,
        Perturbation::RandomUpperCase,
        Perturbation::WhitespaceAddRemove,
    ];

    /// The name as fmeval and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Perturbation::ButterFinger => "butter_finger",
            Perturbation::RandomUpperCase => "random_upper_case",
            Perturbation::WhitespaceAddRemove => "whitespace_add_remove",
        }
    }
}

impl fmt::Display for Perturbation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An unknown perturbation name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown perturbation `{0}` (expected butter_finger, random_upper_case or whitespace_add_remove)"
)]
pub struct UnknownPerturbation(pub String);

impl FromStr for Perturbation {
    type Err = UnknownPerturbation;

    fn from_str(name: &str) -> Result<Perturbation, UnknownPerturbation> {
        Perturbation::ALL
            .into_iter()
            .find(|perturbation| perturbation.as_str() == name)
            .ok_or_else(|| UnknownPerturbation(name.to_owned()))
    }
}

/// One generator stream of one perturbation type.
#[derive(Debug, Clone)]
pub struct Perturber {
    kind: Perturbation,
    generator: Pcg64,
}

impl Perturber {
    /// A fresh stream, seeded as fmeval seeds it (5).
    pub fn new(kind: Perturbation) -> Perturber {
        Perturber {
            kind,
            generator: Pcg64::seeded_5(),
        }
    }

    /// The perturbation type.
    pub fn kind(&self) -> Perturbation {
        self.kind
    }

    /// The [`NUM_PERTURBATIONS`] perturbed versions of `text`, continuing the stream.
    pub fn perturb(&mut self, text: &str) -> Vec<String> {
        (0..NUM_PERTURBATIONS)
            .map(|_| match self.kind {
                Perturbation::ButterFinger => butter_finger(text, &mut self.generator),
                Perturbation::RandomUpperCase => random_upper_case(text, &mut self.generator),
                Perturbation::WhitespaceAddRemove => whitespace(text, &mut self.generator),
            })
            .collect()
    }
}

/// fmeval's `QUERTY_KEY_APPROX`: each key's neighbours, itself first.
fn neighbours(key: char) -> Option<&'static str> {
    Some(match key {
        'q' => "qwasedzx",
        'w' => "wqesadrfcx",
        'e' => "ewrsfdqazxcvgt",
        'r' => "retdgfwsxcvgt",
        't' => "tryfhgedcvbnju",
        'y' => "ytugjhrfvbnji",
        'u' => "uyihkjtgbnmlo",
        'i' => "iuojlkyhnmlp",
        'o' => "oipklujm",
        'p' => "plo['ik",
        'a' => "aqszwxwdce",
        's' => "swxadrfv",
        'd' => "decsfaqgbv",
        'f' => "fdgrvwsxyhn",
        'g' => "gtbfhedcyjn",
        'h' => "hyngjfrvkim",
        'j' => "jhknugtblom",
        'k' => "kjlinyhn",
        'l' => "lokmpujn",
        'z' => "zaxsvde",
        'x' => "xzcsdbvfrewq",
        'c' => "cxvdfzswergb",
        'v' => "vcfbgxdertyn",
        'b' => "bvnghcftyun",
        'n' => "nbmhjvgtuik",
        'm' => "mnkjloik",
        ' ' => " ",
        _ => return None,
    })
}

/// Python's `str.upper()` of `text`, appended to `out`.
fn push_upper(out: &mut String, text: &str) {
    for character in text.chars() {
        out.extend(character.to_uppercase());
    }
}

fn butter_finger(text: &str, generator: &mut Pcg64) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut lowered = String::new();
    for letter in text.chars() {
        if letter.is_ascii() {
            // ASCII: Python's `lower()` and `upper()` stay in ASCII, one character each.
            let key = letter.to_ascii_lowercase();
            let new_letter = match neighbours(key) {
                Some(row) if generator.random() <= BUTTER_FINGER_PROBABILITY => {
                    row.as_bytes()[generator.bounded(row.len() as u64 - 1) as usize] as char
                }
                _ => key,
            };
            out.push(if key == letter {
                new_letter
            } else {
                new_letter.to_ascii_uppercase()
            });
            continue;
        }
        lowered.clear();
        lowered.extend(letter.to_lowercase());
        let mut chars = lowered.chars();
        let single = match (chars.next(), chars.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        };
        let mut buffer = [0u8; 4];
        let new_letter: &str = match single.and_then(|key| neighbours(key).map(|row| (key, row))) {
            Some((key, row)) => {
                if generator.random() <= BUTTER_FINGER_PROBABILITY {
                    // The rows are ASCII: one byte per choice.
                    let pick = generator.bounded(row.len() as u64 - 1) as usize;
                    &row[pick..pick + 1]
                } else {
                    &*key.encode_utf8(&mut buffer)
                }
            }
            None => &lowered,
        };
        let unchanged_case = single == Some(letter);
        if unchanged_case {
            out.push_str(new_letter);
        } else {
            push_upper(&mut out, new_letter);
        }
    }
    out
}

fn random_upper_case(text: &str, generator: &mut Pcg64) -> String {
    let n = text.chars().count();
    let k = (n as f64 * UPPERCASE_FRACTION) as usize;
    if k == 0 {
        return text.to_owned();
    }
    let mut upper = vec![false; n];
    for position in generator.choice_without_replacement(n, k) {
        upper[position] = true;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (character, upper) in text.chars().zip(upper) {
        if upper {
            out.extend(character.to_uppercase());
        } else {
            out.push(character);
        }
    }
    out
}

fn whitespace(text: &str, generator: &mut Pcg64) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16 + 4);
    for character in text.chars() {
        let p = generator.random();
        let space = is_py_whitespace(character);
        if space && p < REMOVE_PROBABILITY {
            continue;
        }
        out.push(character);
        if !space && p < ADD_PROBABILITY {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "A quick brown fox jumps over the lazy dog 10 times.";

    fn first_two(kind: Perturbation) -> Vec<String> {
        Perturber::new(kind).perturb(TEXT)[..2].to_vec()
    }

    /// METRICS.md section 8's test vectors.
    #[test]
    fn spec_test_vectors() {
        assert_eq!(
            first_two(Perturbation::ButterFinger),
            [
                "A qujci brown fox mum[s ovev the lazy dog 10 tioef.",
                "A quick brown fox jumps over the lazn dog 10 timew."
            ]
        );
        assert_eq!(
            first_two(Perturbation::RandomUpperCase),
            [
                "A quick brown fox jumps over thE lazy DoG 10 times.",
                "A Quick brown fox JuMps over the lazy dog 10 times."
            ]
        );
        assert_eq!(
            first_two(Perturbation::WhitespaceAddRemove),
            [
                "A quickb rown fox jumpsover t he  lazy dog 10 time s.",
                "A quick brown fox jumps over the lazydog 10 times."
            ]
        );
    }

    #[test]
    fn case_mappings_follow_python() {
        // Nothing from the table is drawn for these, but they are upper-cased back.
        let mut perturber = Perturber::new(Perturbation::ButterFinger);
        let out = &perturber.perturb("ẞİǅ\u{2126}")[0];
        assert_eq!(out, "SSI\u{307}Ǆ\u{3a9}");
    }

    #[test]
    fn names_round_trip() {
        for kind in Perturbation::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert!("typo".parse::<Perturbation>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,120}") {
            for kind in Perturbation::ALL {
                let out = Perturber::new(kind).perturb(&text);
                proptest::prop_assert_eq!(out.len(), NUM_PERTURBATIONS);
            }
        }
    }
}
