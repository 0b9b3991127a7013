//! fmeval 1.0.3 `qa_accuracy`: exact match, quasi-exact match, precision, recall and F1 over
//! words, each the maximum over the target's `<OR>` alternatives (METRICS.md section 2).
//!
//! Invariants: bit-for-bit fmeval's values (F1 is exactly `1.0 / (0.5/p + 0.5/r)`); every score
//! is in [0, 1]; a [`Scratch`] can be reused across samples so scoring does not allocate on
//! ASCII text once its buffers have grown.

use crate::metrics::normalize::{alternatives, is_py_whitespace, normalize_into, py_strip};

/// The five scores of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QaScores {
    /// `f1_score`.
    pub f1: f64,
    /// `exact_match_score`.
    pub exact_match: f64,
    /// `quasi_exact_match_score`.
    pub quasi_exact_match: f64,
    /// `precision_over_words`.
    pub precision: f64,
    /// `recall_over_words`.
    pub recall: f64,
}

impl QaScores {
    /// The scores with fmeval's names, in fmeval's order.
    pub fn named(&self) -> [(&'static str, f64); 5] {
        [
            ("f1_score", self.f1),
            ("exact_match_score", self.exact_match),
            ("quasi_exact_match_score", self.quasi_exact_match),
            ("precision_over_words", self.precision),
            ("recall_over_words", self.recall),
        ]
    }
}

/// Reusable buffers for [`score_with`].
#[derive(Debug, Default)]
pub struct Scratch {
    lower: String,
    output_normalized: String,
    target_normalized: String,
    output_words: Vec<(usize, usize)>,
    target_words: Vec<(usize, usize)>,
}

/// Scores one sample (allocates its buffers; see [`score_with`] to reuse them).
pub fn score(model_output: &str, target: &str) -> QaScores {
    score_with(model_output, target, &mut Scratch::default())
}

/// Scores one sample using `scratch` for intermediate text.
pub fn score_with(model_output: &str, target: &str, scratch: &mut Scratch) -> QaScores {
    let Scratch {
        lower,
        output_normalized,
        target_normalized,
        output_words,
        target_words,
    } = scratch;
    let output_stripped = py_strip(model_output);
    normalize_into(output_stripped, lower, output_normalized);
    word_set(output_normalized, output_words);

    let mut best: Option<QaScores> = None;
    for alternative in alternatives(target) {
        let alternative_stripped = py_strip(alternative);
        normalize_into(alternative_stripped, lower, target_normalized);
        let exact_match = f64::from(u8::from(output_stripped == alternative_stripped));
        let quasi_exact_match = f64::from(u8::from(output_normalized == target_normalized));

        word_set(target_normalized, target_words);
        let n_common = target_words
            .iter()
            .filter(|(start, end)| {
                let word = &target_normalized[*start..*end];
                output_words
                    .binary_search_by(|(other_start, other_end)| {
                        output_normalized[*other_start..*other_end].cmp(word)
                    })
                    .is_ok()
            })
            .count();
        let precision = if output_words.is_empty() {
            0.0
        } else {
            n_common as f64 / output_words.len() as f64
        };
        let recall = if target_words.is_empty() {
            0.0
        } else {
            n_common as f64 / target_words.len() as f64
        };
        let f1 = if precision == 0.0 || recall == 0.0 {
            0.0
        } else {
            1.0 / (0.5 / precision + 0.5 / recall)
        };
        let scores = QaScores {
            f1,
            exact_match,
            quasi_exact_match,
            precision,
            recall,
        };
        best = Some(match best {
            None => scores,
            Some(best) => QaScores {
                f1: best.f1.max(scores.f1),
                exact_match: best.exact_match.max(scores.exact_match),
                quasi_exact_match: best.quasi_exact_match.max(scores.quasi_exact_match),
                precision: best.precision.max(scores.precision),
                recall: best.recall.max(scores.recall),
            },
        });
    }
    // `split` always yields at least one piece, so `best` is set; zeros are the safe fallback.
    best.unwrap_or(QaScores {
        f1: 0.0,
        exact_match: 0.0,
        quasi_exact_match: 0.0,
        precision: 0.0,
        recall: 0.0,
    })
}

/// The distinct words of `text` (Python `set(text.split())`) as sorted byte ranges.
fn word_set(text: &str, words: &mut Vec<(usize, usize)>) {
    words.clear();
    if text.is_ascii() {
        let mut word_start = None;
        for (position, byte) in text.bytes().enumerate() {
            let is_space =
                byte == b' ' || (b'\t'..=b'\r').contains(&byte) || (0x1c..=0x1f).contains(&byte);
            match (is_space, word_start) {
                (true, Some(start)) => {
                    words.push((start, position));
                    word_start = None;
                }
                (false, None) => word_start = Some(position),
                _ => {}
            }
        }
        if let Some(start) = word_start {
            words.push((start, text.len()));
        }
    } else {
        let mut word_start = None;
        for (position, character) in text.char_indices() {
            match (is_py_whitespace(character), word_start) {
                (true, Some(start)) => {
                    words.push((start, position));
                    word_start = None;
                }
                (false, None) => word_start = Some(position),
                _ => {}
            }
        }
        if let Some(start) = word_start {
            words.push((start, text.len()));
        }
    }
    words.sort_unstable_by(|(a_start, a_end), (b_start, b_end)| {
        text[*a_start..*a_end].cmp(&text[*b_start..*b_end])
    });
    words.dedup_by(|(a_start, a_end), (b_start, b_end)| {
        text[*a_start..*a_end] == text[*b_start..*b_end]
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is `[em, qem, p, r, f1]`, the column order of METRICS.md 2.5.
    fn check(target: &str, model_output: &str, expected: [f64; 5]) {
        let got = score(model_output, target);
        let got = [
            got.exact_match,
            got.quasi_exact_match,
            got.precision,
            got.recall,
            got.f1,
        ];
        assert_eq!(
            got.map(f64::to_bits),
            expected.map(f64::to_bits),
            "target {target:?}, output {model_output:?}: got {got:?}, expected {expected:?}"
        );
    }

    #[test]
    fn worked_examples_of_metrics_md_2_5() {
        check(
            "October 1973<OR>October<OR>1973",
            "The crisis began in October 1973.",
            [0.0, 0.0, 0.4, 1.0, 0.5714285714285714],
        );
        check(
            "the arid plains of Central Asia<OR>Central Asia",
            "Central Asia",
            [1.0, 1.0, 1.0, 1.0, 1.0],
        );
        check(
            "New York City",
            "New  York   City",
            [0.0, 1.0, 1.0, 1.0, 1.0],
        );
        check("New York City", "City York New", [0.0, 0.0, 1.0, 1.0, 1.0]);
        check(
            "The Answer",
            "the\nanswer",
            [0.0, 0.0, 0.5, 1.0, 0.6666666666666666],
        );
        check("the", "", [0.0, 1.0, 0.0, 0.0, 0.0]);
        check("U.S.", "US", [0.0, 1.0, 1.0, 1.0, 1.0]);
        check(
            "non-combustion",
            "non combustion",
            [0.0, 0.0, 0.0, 0.0, 0.0],
        );
        check("Paris", "\u{a0}Paris\u{a0}", [1.0, 1.0, 1.0, 1.0, 1.0]);
        check("Paris", "\u{200b}Paris", [0.0, 0.0, 0.0, 0.0, 0.0]);
        check("O’Brien", "OBrien", [0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn per_metric_max_over_alternatives_row_294() {
        check(
            "Paris<OR>Paris France Europe",
            "Paris France",
            [0.0, 0.0, 1.0, 1.0, 0.8],
        );
    }

    #[test]
    fn empty_normalizations_match_for_quasi_exact() {
        check("", "the", [0.0, 1.0, 0.0, 0.0, 0.0]);
        check("a", "The", [0.0, 1.0, 0.0, 0.0, 0.0]);
        check("", "", [1.0, 1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn words_are_sets() {
        check("yes", "Yes, yes, YES!", [0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn empty_alternatives_are_kept() {
        // "France<OR>": the empty alternative never wins P/R/F1 but does not hurt either.
        check("France<OR>", "France", [1.0, 1.0, 1.0, 1.0, 1.0]);
        check("<OR>", "France", [0.0, 0.0, 0.0, 0.0, 0.0]);
        check("<OR>", "", [1.0, 1.0, 0.0, 0.0, 0.0]);
        check(
            // `<or>` is no delimiter and its punctuation is deleted: one word, `parisorlondon`.
            "Paris<or>London",
            "Paris",
            [0.0, 0.0, 0.0, 0.0, 0.0],
        );
    }

    #[test]
    fn strip_and_split_use_pythons_whitespace() {
        // U+001C..U+001F are Python whitespace but not Rust's.
        check("Paris", "\u{1c}Paris\u{1f}", [1.0, 1.0, 1.0, 1.0, 1.0]);
        // A newline between words: not a space for N, but ws-split separates the words.
        check("New York", "New\nYork", [0.0, 0.0, 1.0, 1.0, 1.0]);
        // The article next to a tab survives N, then becomes a word of its own.
        check("cat", "the\tcat", [0.0, 0.0, 0.5, 1.0, 0.6666666666666666]);
        // NBSP inside: strip keeps it, ws-split separates on it.
        check("New York", "New\u{a0}York", [0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn case_and_unicode_lowercase() {
        check("ΟΔΟΣ", "οδος", [0.0, 1.0, 1.0, 1.0, 1.0]);
        check("Straße", "STRASSE", [0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn f1_uses_the_harmonic_form() {
        // fmeval computes 1/(0.5/p + 0.5/r), which can differ from 2pr/(p+r) in the last bit.
        let got = score("x", "x a1 b1 c1 d1 e1");
        assert_eq!(
            got.f1.to_bits(),
            (1.0f64 / (0.5 / (1.0 / 6.0) + 0.5 / 1.0)).to_bits()
        );
    }

    #[test]
    fn named_order_is_fmevals() {
        let names: Vec<&str> = score("a", "a")
            .named()
            .iter()
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(
            names,
            [
                "f1_score",
                "exact_match_score",
                "quasi_exact_match_score",
                "precision_over_words",
                "recall_over_words"
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn invariants(output in "\\PC{0,30}", target in "[a-zA-Z .,<OR>\u{a0}\t]{0,30}") {
            let scores = score(&output, &target);
            for (name, value) in scores.named() {
                proptest::prop_assert!((0.0..=1.0).contains(&value), "{} = {}", name, value);
            }
            proptest::prop_assert!(scores.exact_match <= scores.quasi_exact_match);
            proptest::prop_assert!(scores.f1 <= scores.precision.max(scores.recall) + 1e-15);
            let swapped = score(&target, &output);
            if !target.contains("<OR>") && !output.contains("<OR>") {
                proptest::prop_assert_eq!(scores.exact_match, swapped.exact_match);
                proptest::prop_assert_eq!(scores.quasi_exact_match, swapped.quasi_exact_match);
                proptest::prop_assert_eq!(scores.f1.to_bits(), swapped.f1.to_bits());
                proptest::prop_assert_eq!(scores.precision, swapped.recall);
            }
        }

        #[test]
        fn identical_text_is_exact(text in "[a-z ]{0,20}") {
            let scores = score(&text, &text);
            proptest::prop_assert_eq!(scores.exact_match, 1.0);
            proptest::prop_assert_eq!(scores.quasi_exact_match, 1.0);
        }
    }
}
