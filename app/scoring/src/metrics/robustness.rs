//! fmeval 1.0.3's semantic-robustness scores (METRICS.md section 8): for each score `X` of the
//! base metric, `delta_X` is the mean over the perturbed prompts' answers of
//! `|X(original) − X(perturbed)|`, averaged as numpy averages (five values: a left-to-right sum
//! divided by 5).
//!
//! Invariants: pure; a delta of scores in [0, 1] is in [0, 1]; names are fmeval's
//! (`delta_f1_score`, `delta_classification_accuracy_score`, ...) and follow the original
//! scores' order. Depends on [`super`]'s score types and [`crate::numpy`] only.

use super::{Score, ScoreValue};
use crate::numpy;

/// fmeval's prefix of delta score names.
pub const DELTA_PREFIX: &str = "delta_";

/// The `delta_*` scores of `original` against each perturbed answer's scores, in `original`'s
/// order. A score missing from a perturbed answer (or no perturbed answer at all) gives no
/// delta for it.
pub fn delta_scores(original: &[Score], perturbed: &[Vec<Score>]) -> Vec<Score> {
    if perturbed.is_empty() {
        return Vec::new();
    }
    let mut deltas = Vec::with_capacity(original.len());
    let mut differences = Vec::with_capacity(perturbed.len());
    'scores: for score in original {
        differences.clear();
        for answer in perturbed {
            let Some(other) = answer.iter().find(|other| other.name == score.name) else {
                continue 'scores;
            };
            differences.push((score.value.as_f64() - other.value.as_f64()).abs());
        }
        deltas.push(Score {
            name: format!("{DELTA_PREFIX}{}", score.name),
            value: ScoreValue::Float(numpy::mean(&differences)),
        });
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[(&str, ScoreValue)]) -> Vec<Score> {
        values
            .iter()
            .map(|(name, value)| Score {
                name: (*name).to_owned(),
                value: *value,
            })
            .collect()
    }

    #[test]
    fn mean_absolute_differences() {
        let original = scores(&[
            ("f1_score", ScoreValue::Float(1.0)),
            ("classification_accuracy_score", ScoreValue::Int(1)),
        ]);
        let perturbed: Vec<Vec<Score>> = [0.5, 1.0, 0.2, 1.0, 0.3]
            .iter()
            .zip([1, 0, 1, 1, 0])
            .map(|(f1, accuracy)| {
                scores(&[
                    ("f1_score", ScoreValue::Float(*f1)),
                    ("classification_accuracy_score", ScoreValue::Int(accuracy)),
                ])
            })
            .collect();
        let deltas = delta_scores(&original, &perturbed);
        assert_eq!(deltas[0].name, "delta_f1_score");
        assert_eq!(
            deltas[0].value,
            ScoreValue::Float(((((0.5 + 0.0) + 0.8) + 0.0) + 0.7) / 5.0)
        );
        assert_eq!(deltas[1].name, "delta_classification_accuracy_score");
        assert_eq!(deltas[1].value, ScoreValue::Float(0.4));
        assert!(delta_scores(&original, &[]).is_empty());
    }
}
