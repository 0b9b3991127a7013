//! fmeval 1.0.3 `classification_accuracy` (METRICS.md section 7): the model's answer turned into
//! a label exactly as fmeval's `convert_model_output_to_label` does, the per-record score, and
//! the dataset scores scikit-learn computes (accuracy, balanced accuracy, precision and recall
//! with a micro, macro or weighted average) with the confusion matrix they come from.
//!
//! fmeval's quirks, reproduced: the answer is split on single spaces only (`"is\npositive"` is
//! one piece), each piece and each label is `lower()`ed and `strip()`ped, but the **target is
//! compared raw**, so a target `"Positive"` never scores 1; `"unknown"` (no label found) and
//! case variants of targets are classes of their own in the dataset scores.
//!
//! Invariants: pure; averages are summed as numpy sums them ([`crate::numpy`]); every score is
//! in [0, 1]. Depends on [`super::normalize`] and [`crate::numpy`] only.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::normalize::{lower_into, py_strip};
use crate::numpy;

/// The label fmeval predicts when the answer holds none of the valid labels.
pub const UNKNOWN_LABEL: &str = "unknown";

/// The valid labels, normalised as fmeval normalises them (`lower().strip()`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidLabels {
    normalized: Vec<String>,
}

impl ValidLabels {
    /// The labels a run was given (or, by default, the distinct targets of its dataset).
    pub fn new<S: AsRef<str>>(labels: impl IntoIterator<Item = S>) -> ValidLabels {
        let mut normalized: Vec<String> = Vec::new();
        let mut lowered = String::new();
        for label in labels {
            lower_into(label.as_ref(), &mut lowered);
            let label = py_strip(&lowered);
            if !normalized.iter().any(|seen| seen == label) {
                normalized.push(label.to_owned());
            }
        }
        ValidLabels { normalized }
    }

    /// The normalised labels, first-seen order.
    pub fn labels(&self) -> &[String] {
        &self.normalized
    }

    /// fmeval's prediction for `model_output`: the first piece of `model_output.split(" ")`
    /// whose `lower().strip()` is a valid label, else [`UNKNOWN_LABEL`].
    pub fn predict(&self, model_output: &str) -> String {
        let mut lowered = String::new();
        for piece in model_output.split(' ') {
            let found = if piece.is_ascii() {
                // ASCII stays ASCII under `lower()`, and the labels are lowercase: compare
                // without copying.
                let candidate = py_strip(piece);
                self.normalized
                    .iter()
                    .find(|label| label.eq_ignore_ascii_case(candidate))
            } else {
                lower_into(piece, &mut lowered);
                let candidate = py_strip(&lowered);
                self.normalized.iter().find(|label| *label == candidate)
            };
            if let Some(label) = found {
                return label.clone();
            }
        }
        UNKNOWN_LABEL.to_owned()
    }
}

/// The per-record `classification_accuracy_score`: 1 when the predicted label equals the raw
/// target (not lowercased, not stripped), else 0 (an integer, as fmeval writes it).
pub fn score(predicted: &str, target: &str) -> i64 {
    i64::from(predicted == target)
}

/// scikit-learn's `average` for precision and recall (fmeval's `multiclass_average_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Average {
    /// Total true positives over all predictions (equals the accuracy); fmeval's default.
    #[default]
    Micro,
    /// The unweighted mean over every label of the union of targets and predictions.
    Macro,
    /// The mean weighted by each label's count among the targets.
    Weighted,
}

impl Average {
    /// The name as scikit-learn and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Average::Micro => "micro",
            Average::Macro => "macro",
            Average::Weighted => "weighted",
        }
    }
}

impl fmt::Display for Average {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An unknown average name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown average `{0}` (expected micro, macro or weighted)")]
pub struct UnknownAverage(pub String);

impl FromStr for Average {
    type Err = UnknownAverage;

    fn from_str(name: &str) -> Result<Average, UnknownAverage> {
        [Average::Micro, Average::Macro, Average::Weighted]
            .into_iter()
            .find(|average| average.as_str() == name)
            .ok_or_else(|| UnknownAverage(name.to_owned()))
    }
}

/// Counts of (target, predicted label) pairs: the confusion matrix, built one record at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
    n_records: u64,
}

/// The dataset scores of a classification run, fmeval's names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassificationScores {
    /// `classification_accuracy_score`.
    pub accuracy: f64,
    /// `balanced_accuracy_score`.
    pub balanced_accuracy: f64,
    /// `precision_score`.
    pub precision: f64,
    /// `recall_score`.
    pub recall: f64,
}

impl ClassificationScores {
    /// The scores with fmeval's names, in fmeval's order.
    pub fn named(&self) -> [(&'static str, f64); 4] {
        [
            ("classification_accuracy_score", self.accuracy),
            ("balanced_accuracy_score", self.balanced_accuracy),
            ("precision_score", self.precision),
            ("recall_score", self.recall),
        ]
    }
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new() -> ConfusionMatrix {
        ConfusionMatrix::default()
    }

    /// Counts one record: its raw target and its predicted label.
    pub fn add(&mut self, target: &str, predicted: &str) {
        self.n_records += 1;
        // Allocates only for a (target, prediction) pair not seen before.
        let count_in = |row: &mut BTreeMap<String, u64>| match row.get_mut(predicted) {
            Some(count) => *count += 1,
            None => {
                row.insert(predicted.to_owned(), 1);
            }
        };
        if let Some(row) = self.counts.get_mut(target) {
            count_in(row);
        } else {
            let mut row = BTreeMap::new();
            count_in(&mut row);
            self.counts.insert(target.to_owned(), row);
        }
    }

    /// Adds another matrix's counts (per-category matrices into an overall one).
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        for (target, row) in &other.counts {
            for (predicted, count) in row {
                *self
                    .counts
                    .entry(target.clone())
                    .or_default()
                    .entry(predicted.clone())
                    .or_default() += count;
            }
        }
        self.n_records += other.n_records;
    }

    /// How many records were counted.
    pub fn n_records(&self) -> u64 {
        self.n_records
    }

    /// The sorted union of targets and predictions (scikit-learn's `unique_labels`): the rows
    /// and columns of [`ConfusionMatrix::rows`].
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self.counts.keys().cloned().collect();
        for row in self.counts.values() {
            labels.extend(row.keys().cloned());
        }
        labels.sort_unstable();
        labels.dedup();
        labels
    }

    /// The matrix over [`ConfusionMatrix::labels`]: `rows[i][j]` = records whose target is
    /// label i and whose prediction is label j (scikit-learn's `confusion_matrix`).
    pub fn rows(&self) -> Vec<Vec<u64>> {
        let labels = self.labels();
        labels
            .iter()
            .map(|target| {
                let row = self.counts.get(target);
                labels
                    .iter()
                    .map(|predicted| row.and_then(|row| row.get(predicted)).copied().unwrap_or(0))
                    .collect()
            })
            .collect()
    }

    /// The dataset scores; `None` when no record was counted.
    pub fn scores(&self, average: Average) -> Option<ClassificationScores> {
        if self.n_records == 0 {
            return None;
        }
        let labels = self.labels();
        let rows = self.rows();
        let n_labels = labels.len();
        let true_positives: Vec<u64> = (0..n_labels).map(|index| rows[index][index]).collect();
        let true_counts: Vec<u64> = rows.iter().map(|row| row.iter().sum()).collect();
        let predicted_counts: Vec<u64> = (0..n_labels)
            .map(|column| rows.iter().map(|row| row[column]).sum())
            .collect();
        let n = self.n_records as f64;
        let correct: u64 = true_positives.iter().sum();
        let accuracy = correct as f64 / n;
        // Balanced accuracy: recall of every class that has targets (classes seen only among
        // predictions give NaN in scikit-learn and are dropped).
        let recalls: Vec<f64> = (0..n_labels)
            .filter(|index| true_counts[*index] > 0)
            .map(|index| true_positives[index] as f64 / true_counts[index] as f64)
            .collect();
        let balanced_accuracy = numpy::mean(&recalls);
        let divide = |numerator: u64, denominator: u64| -> f64 {
            if denominator == 0 {
                0.0
            } else {
                numerator as f64 / denominator as f64
            }
        };
        let per_label_precision: Vec<f64> = (0..n_labels)
            .map(|index| divide(true_positives[index], predicted_counts[index]))
            .collect();
        let per_label_recall: Vec<f64> = (0..n_labels)
            .map(|index| divide(true_positives[index], true_counts[index]))
            .collect();
        let (precision, recall) = match average {
            // tp.sum() / pred.sum() and tp.sum() / true.sum(): both n.
            Average::Micro => (accuracy, accuracy),
            Average::Macro => (
                numpy::mean(&per_label_precision),
                numpy::mean(&per_label_recall),
            ),
            Average::Weighted => {
                // `np.average(values, weights=true_counts)`: sum(values × weights) / sum(weights).
                let weights: Vec<f64> = true_counts.iter().map(|count| *count as f64).collect();
                let total_weight = numpy::pairwise_sum(&weights);
                let weighted = |values: &[f64]| -> f64 {
                    let products: Vec<f64> = values
                        .iter()
                        .zip(&weights)
                        .map(|(value, weight)| value * weight)
                        .collect();
                    numpy::pairwise_sum(&products) / total_weight
                };
                (weighted(&per_label_precision), weighted(&per_label_recall))
            }
        };
        Some(ClassificationScores {
            accuracy,
            balanced_accuracy,
            precision,
            recall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_fmeval_converts_them() {
        let labels = ValidLabels::new(["Positive", " negative "]);
        assert_eq!(labels.labels(), ["positive", "negative"]);
        for (output, expected) in [
            ("negative positive", "negative"),
            ("\tpositive", "positive"),
            ("positive\n", "positive"),
            ("\u{a0}positive", "positive"),
            ("positive\u{3000}", "positive"),
            ("positive\u{1c}", "positive"),
            ("POSITIVE", "positive"),
            ("answer:\tpositive", UNKNOWN_LABEL),
            ("is\npositive", UNKNOWN_LABEL),
            ("positive.", UNKNOWN_LABEL),
            ("(positive)", UNKNOWN_LABEL),
            ("\u{200b}positive", UNKNOWN_LABEL),
            ("", UNKNOWN_LABEL),
        ] {
            assert_eq!(labels.predict(output), expected, "{output:?}");
        }
        // The Kelvin sign lower-cases to ASCII `k`.
        assert_eq!(ValidLabels::new(["kids"]).predict("\u{212a}ids"), "kids");
    }

    #[test]
    fn the_target_is_compared_raw() {
        let labels = ValidLabels::new(["Positive"]);
        let predicted = labels.predict("Positive");
        assert_eq!(score(&predicted, "Positive"), 0);
        assert_eq!(score(&predicted, " positive"), 0);
        assert_eq!(score(&predicted, "positive"), 1);
    }

    fn matrix(pairs: &[(&str, &str)]) -> ConfusionMatrix {
        let mut matrix = ConfusionMatrix::new();
        for (target, predicted) in pairs {
            matrix.add(target, predicted);
        }
        matrix
    }

    #[test]
    fn dataset_scores() {
        // y_true = [a, a, b, b, b, c], y_pred = [a, b, b, b, unknown, a]:
        // labels [a, b, c, unknown]; tp [1, 2, 0, 0]; true [2, 3, 1, 0]; pred [2, 3, 0, 1].
        let matrix = matrix(&[
            ("a", "a"),
            ("a", "b"),
            ("b", "b"),
            ("b", "b"),
            ("b", "unknown"),
            ("c", "a"),
        ]);
        assert_eq!(matrix.labels(), ["a", "b", "c", "unknown"]);
        assert_eq!(
            matrix.rows(),
            [[1, 1, 0, 0], [0, 2, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
        );
        let micro = matrix.scores(Average::Micro).expect("records");
        assert_eq!(micro.accuracy, 0.5);
        assert_eq!(micro.precision, 0.5);
        assert_eq!(micro.recall, 0.5);
        // (1/2 + 2/3 + 0) / 3
        assert_eq!(micro.balanced_accuracy, (0.5 + 2.0 / 3.0) / 3.0);
        let macro_ = matrix.scores(Average::Macro).expect("records");
        assert_eq!(macro_.precision, (0.5 + 2.0 / 3.0 + 0.0 + 0.0) / 4.0);
        assert_eq!(macro_.recall, (0.5 + 2.0 / 3.0 + 0.0 + 0.0) / 4.0);
        let weighted = matrix.scores(Average::Weighted).expect("records");
        assert_eq!(weighted.precision, (0.5 * 2.0 + 2.0 / 3.0 * 3.0) / 6.0);
        assert_eq!(
            matrix.scores(Average::Micro).map(|s| s.named()[0].0),
            Some("classification_accuracy_score")
        );
        assert_eq!(ConfusionMatrix::new().scores(Average::Micro), None);
    }

    #[test]
    fn merged_matrices_add_up() {
        let mut overall = matrix(&[("a", "a")]);
        overall.merge(&matrix(&[("a", "b"), ("b", "b")]));
        assert_eq!(overall, matrix(&[("a", "a"), ("a", "b"), ("b", "b")]));
        assert_eq!(overall.n_records(), 3);
    }

    #[test]
    fn averages_parse() {
        assert_eq!("macro".parse(), Ok(Average::Macro));
        assert_eq!(
            "samples"
                .parse::<Average>()
                .map_err(|error| error.to_string()),
            Err("unknown average `samples` (expected micro, macro or weighted)".to_owned())
        );
    }

    proptest::proptest! {
        #[test]
        fn scores_stay_in_range(
            pairs in proptest::collection::vec(("[abc]{1,2}", "[abc]{1,2}|unknown"), 1..40),
        ) {
            let mut matrix = ConfusionMatrix::new();
            for (target, predicted) in &pairs {
                matrix.add(target, predicted);
            }
            for average in [Average::Micro, Average::Macro, Average::Weighted] {
                let scores = matrix.scores(average).expect("records");
                for (_, value) in scores.named() {
                    proptest::prop_assert!((0.0..=1.0).contains(&value), "{value}");
                }
            }
        }

        #[test]
        fn prediction_is_the_first_piece_lowered_and_stripped_that_is_a_label(
            output in "([pPnN][oOeE][sSgG]?|Pos|NEG|\u{212a}o|\\s|\u{130}|[a-z ]{0,3}|\t){0,12}",
            labels in proptest::collection::vec("[pPnN][oOeE][sSgG]?|ko|i\u{307}|\\PC{0,3}", 1..4),
        ) {
            // fmeval's own steps: every piece `lower()`ed, then `strip()`ped, then looked up.
            let valid = ValidLabels::new(&labels);
            let expected = output
                .split(' ')
                .map(|piece| py_strip(&piece.to_lowercase()).to_owned())
                .find(|candidate| valid.labels().contains(candidate))
                .unwrap_or_else(|| UNKNOWN_LABEL.to_owned());
            proptest::prop_assert_eq!(valid.predict(&output), expected);
        }

        #[test]
        fn prediction_never_panics(output in "\\PC{0,60}", label in "\\PC{0,10}") {
            let labels = ValidLabels::new([label]);
            let predicted = labels.predict(&output);
            proptest::prop_assert!(predicted == UNKNOWN_LABEL || labels.labels().contains(&predicted));
        }
    }
}
