//! Evaluation metrics: fmeval 1.0.3's `qa_accuracy`, `factual_knowledge`,
//! `classification_accuracy`, `summarization_accuracy` (ROUGE) and the semantic-robustness
//! deltas reproduced bit for bit (see `METRICS.md`), the task types and the metrics each
//! offers, the names and score lists of every metric a run can ask for (the LLM judge's
//! included; the engine computes that one), and dataset-level means.
//!
//! Invariants: metrics are pure and deterministic (no IO, no randomness); score names and their
//! order are fmeval's; `factual_knowledge` and `classification_accuracy_score` are integers
//! per record, every other score a float.

pub mod classification;
pub mod factual_knowledge;
pub mod normalize;
pub mod porter;
pub mod qa_accuracy;
pub mod robustness;
pub mod rouge;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::python::python_float_repr;

/// An evaluation algorithm a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    /// fmeval `qa_accuracy`: five word-overlap scores.
    QaAccuracy,
    /// fmeval `factual_knowledge`: does a reference answer occur in the output.
    FactualKnowledge,
    /// The app's LLM judge: do judge models say the answer matches the reference.
    QaAccuracyByLlm,
    /// fmeval `classification_accuracy`: the answer's label against the target.
    ClassificationAccuracy,
    /// fmeval `summarization_accuracy`: ROUGE-1, ROUGE-2 and ROUGE-L.
    SummarizationAccuracy,
    /// fmeval `qa_accuracy_semantic_robustness`: qa_accuracy and how much perturbed prompts
    /// move it.
    QaAccuracySemanticRobustness,
    /// fmeval `classification_accuracy_semantic_robustness`.
    ClassificationAccuracySemanticRobustness,
}

impl MetricName {
    /// Every metric, in a stable order.
    pub const ALL: [MetricName; 7] = [
        MetricName::QaAccuracy,
        MetricName::FactualKnowledge,
        MetricName::QaAccuracyByLlm,
        MetricName::ClassificationAccuracy,
        MetricName::SummarizationAccuracy,
        MetricName::QaAccuracySemanticRobustness,
        MetricName::ClassificationAccuracySemanticRobustness,
    ];

    /// Whether the metric perturbs each prompt and calls the model on every perturbed one.
    pub fn is_robustness(self) -> bool {
        matches!(
            self,
            MetricName::QaAccuracySemanticRobustness
                | MetricName::ClassificationAccuracySemanticRobustness
        )
    }

    /// Whether the metric turns answers into labels (and so needs the label set).
    pub fn is_classification(self) -> bool {
        matches!(
            self,
            MetricName::ClassificationAccuracy
                | MetricName::ClassificationAccuracySemanticRobustness
        )
    }

    /// The metric's name as written on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::QaAccuracy => "qa_accuracy",
            MetricName::FactualKnowledge => "factual_knowledge",
            MetricName::QaAccuracyByLlm => "qa_accuracy_by_llm",
            MetricName::ClassificationAccuracy => "classification_accuracy",
            MetricName::SummarizationAccuracy => "summarization_accuracy",
            MetricName::QaAccuracySemanticRobustness => "qa_accuracy_semantic_robustness",
            MetricName::ClassificationAccuracySemanticRobustness => {
                "classification_accuracy_semantic_robustness"
            }
        }
    }

    /// The names of the scores this metric produces, in output order.
    pub fn score_names(self) -> &'static [&'static str] {
        match self {
            MetricName::QaAccuracy => &[
                "f1_score",
                "exact_match_score",
                "quasi_exact_match_score",
                "precision_over_words",
                "recall_over_words",
            ],
            MetricName::FactualKnowledge => &["factual_knowledge"],
            MetricName::QaAccuracyByLlm => &["qa_accuracy_by_llm"],
            MetricName::ClassificationAccuracy => &["classification_accuracy_score"],
            MetricName::SummarizationAccuracy => &["rouge1", "rouge2", "rougeL"],
            MetricName::QaAccuracySemanticRobustness => &[
                "f1_score",
                "exact_match_score",
                "quasi_exact_match_score",
                "precision_over_words",
                "recall_over_words",
                "delta_f1_score",
                "delta_exact_match_score",
                "delta_quasi_exact_match_score",
                "delta_precision_over_words",
                "delta_recall_over_words",
            ],
            MetricName::ClassificationAccuracySemanticRobustness => &[
                "classification_accuracy_score",
                "delta_classification_accuracy_score",
            ],
        }
    }

    /// The names of the scores a run summary gives for this metric: the per-record scores'
    /// means, and for classification the dataset scores scikit-learn computes.
    pub fn summary_score_names(self) -> &'static [&'static str] {
        match self {
            MetricName::ClassificationAccuracy => &[
                "classification_accuracy_score",
                "balanced_accuracy_score",
                "precision_score",
                "recall_score",
            ],
            MetricName::ClassificationAccuracySemanticRobustness => &[
                "classification_accuracy_score",
                "balanced_accuracy_score",
                "precision_score",
                "recall_score",
                "delta_classification_accuracy_score",
            ],
            other => other.score_names(),
        }
    }

    /// The base metric a robustness metric perturbs; the metric itself otherwise.
    pub fn base(self) -> MetricName {
        match self {
            MetricName::QaAccuracySemanticRobustness => MetricName::QaAccuracy,
            MetricName::ClassificationAccuracySemanticRobustness => {
                MetricName::ClassificationAccuracy
            }
            other => other,
        }
    }
}

/// What a run evaluates: fmeval's task types, each with the metrics it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Question answering (the reference holds `<OR>`-joined answers).
    #[default]
    Qa,
    /// Classification: the answer is turned into one of a set of labels.
    Classification,
    /// Summarization: the answer is compared with a reference summary.
    Summarization,
    /// Open generation: judged by judge models only.
    Generation,
}

impl Task {
    /// Every task type, in a stable order.
    pub const ALL: [Task; 4] = [
        Task::Qa,
        Task::Classification,
        Task::Summarization,
        Task::Generation,
    ];

    /// The name as the command line and forms spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Qa => "qa",
            Task::Classification => "classification",
            Task::Summarization => "summarization",
            Task::Generation => "generation",
        }
    }

    /// The metrics this task type offers, the default first.
    pub fn metrics(self) -> &'static [MetricName] {
        match self {
            Task::Qa => &[
                MetricName::QaAccuracy,
                MetricName::FactualKnowledge,
                MetricName::QaAccuracyByLlm,
                MetricName::QaAccuracySemanticRobustness,
            ],
            Task::Classification => &[
                MetricName::ClassificationAccuracy,
                MetricName::ClassificationAccuracySemanticRobustness,
            ],
            Task::Summarization => &[MetricName::SummarizationAccuracy],
            Task::Generation => &[MetricName::QaAccuracyByLlm],
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An unknown task type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task `{0}` (expected qa, classification, summarization or generation)")]
pub struct UnknownTask(pub String);

impl FromStr for Task {
    type Err = UnknownTask;

    fn from_str(name: &str) -> Result<Task, UnknownTask> {
        Task::ALL
            .into_iter()
            .find(|task| task.as_str() == name)
            .ok_or_else(|| UnknownTask(name.to_owned()))
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An unknown metric name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown metric `{name}` (expected qa_accuracy, factual_knowledge, qa_accuracy_by_llm, classification_accuracy, summarization_accuracy, qa_accuracy_semantic_robustness or classification_accuracy_semantic_robustness)"
)]
pub struct UnknownMetric {
    /// What was given.
    pub name: String,
}

impl FromStr for MetricName {
    type Err = UnknownMetric;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        MetricName::ALL
            .into_iter()
            .find(|metric| metric.as_str() == name)
            .ok_or_else(|| UnknownMetric {
                name: name.to_owned(),
            })
    }
}

/// A score's value: fmeval prints `factual_knowledge` as an integer and the rest as floats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScoreValue {
    /// A JSON integer.
    Int(i64),
    /// A JSON float (`1.0`, not `1`).
    Float(f64),
}

impl ScoreValue {
    /// The value as a float, for means and thresholds.
    pub fn as_f64(self) -> f64 {
        match self {
            ScoreValue::Int(value) => value as f64,
            ScoreValue::Float(value) => value,
        }
    }
}

/// Prints like Python (`1`, `1.0`, `0.5714285714285714`), as fmeval's output shows values.
impl fmt::Display for ScoreValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScoreValue::Int(value) => write!(formatter, "{value}"),
            ScoreValue::Float(value) => formatter.write_str(&python_float_repr(*value)),
        }
    }
}

/// One named score of one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// fmeval's score name (`f1_score`, `factual_knowledge`, ...).
    pub name: String,
    /// The value.
    pub value: ScoreValue,
}

/// Scores one record with an fmeval metric, names and order as fmeval writes them.
/// `QaAccuracyByLlm` needs judge models and gives no scores here (the engine's `judge` module
/// scores it); classification needs the label set ([`score_classification`]); the robustness
/// metrics need the perturbed prompts' answers ([`robustness::delta_scores`]): they give their
/// base metric's scores here.
pub fn score_record(metric: MetricName, model_output: &str, target: &str) -> Vec<Score> {
    match metric {
        MetricName::QaAccuracy => qa_accuracy::score(model_output, target)
            .named()
            .into_iter()
            .map(|(name, value)| Score {
                name: name.to_owned(),
                value: ScoreValue::Float(value),
            })
            .collect(),
        MetricName::FactualKnowledge => vec![Score {
            name: "factual_knowledge".to_owned(),
            value: ScoreValue::Int(factual_knowledge::score(model_output, target)),
        }],
        MetricName::SummarizationAccuracy => rouge::score(model_output, target)
            .named()
            .into_iter()
            .map(|(name, value)| Score {
                name: name.to_owned(),
                value: ScoreValue::Float(value),
            })
            .collect(),
        MetricName::QaAccuracySemanticRobustness => {
            score_record(MetricName::QaAccuracy, model_output, target)
        }
        MetricName::QaAccuracyByLlm
        | MetricName::ClassificationAccuracy
        | MetricName::ClassificationAccuracySemanticRobustness => Vec::new(),
    }
}

/// Scores one classification record: the predicted label and the record's
/// `classification_accuracy_score` (an integer, as fmeval writes it).
pub fn score_classification(
    labels: &classification::ValidLabels,
    model_output: &str,
    target: &str,
) -> (String, Score) {
    let predicted = labels.predict(model_output);
    let score = Score {
        name: "classification_accuracy_score".to_owned(),
        value: ScoreValue::Int(classification::score(&predicted, target)),
    };
    (predicted, score)
}

/// The mean of one score over the records that have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanScore {
    /// The score name.
    pub name: String,
    /// The mean value.
    pub value: f64,
    /// How many records contributed.
    pub count: usize,
}

/// The means of one category's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMeans {
    /// The category value.
    pub category: String,
    /// The means, in first-seen score order.
    pub scores: Vec<MeanScore>,
}

#[derive(Debug, Clone, Default)]
struct Sums {
    names: Vec<String>,
    sums: Vec<(f64, usize)>,
}

impl Sums {
    fn add(&mut self, scores: &[Score]) {
        for score in scores {
            let position = match self.names.iter().position(|name| *name == score.name) {
                Some(position) => position,
                None => {
                    self.names.push(score.name.clone());
                    self.sums.push((0.0, 0));
                    self.sums.len() - 1
                }
            };
            let (sum, count) = &mut self.sums[position];
            *sum += score.value.as_f64();
            *count += 1;
        }
    }

    fn means(&self) -> Vec<MeanScore> {
        self.names
            .iter()
            .zip(&self.sums)
            .map(|(name, (sum, count))| MeanScore {
                name: name.clone(),
                value: sum / *count as f64,
                count: *count,
            })
            .collect()
    }
}

/// Streaming dataset-level means per score name, and per category when records have one.
///
/// A plain left-to-right sum divided by the count: fmeval (Ray) sums block by block, so means
/// agree with it to about 1e-16, well inside the 1e-12 we promise.
#[derive(Debug, Clone, Default)]
pub struct MeanAccumulator {
    overall: Sums,
    categories: BTreeMap<String, Sums>,
    n_records: usize,
}

impl MeanAccumulator {
    /// An empty accumulator.
    pub fn new() -> MeanAccumulator {
        MeanAccumulator::default()
    }

    /// Adds one record's scores; `category` is the record's `category` field, if any.
    pub fn add(&mut self, scores: &[Score], category: Option<&str>) {
        self.n_records += 1;
        self.overall.add(scores);
        if let Some(category) = category {
            match self.categories.get_mut(category) {
                Some(sums) => sums.add(scores),
                None => {
                    let mut sums = Sums::default();
                    sums.add(scores);
                    self.categories.insert(category.to_owned(), sums);
                }
            }
        }
    }

    /// How many records were added.
    pub fn n_records(&self) -> usize {
        self.n_records
    }

    /// The mean of every score, in first-seen order.
    pub fn means(&self) -> Vec<MeanScore> {
        self.overall.means()
    }

    /// The mean of `name`, if any record had it.
    pub fn mean(&self, name: &str) -> Option<f64> {
        self.means()
            .into_iter()
            .find(|mean| mean.name == name)
            .map(|mean| mean.value)
    }

    /// Per-category means, categories sorted by value (empty when no record had a category).
    pub fn category_means(&self) -> Vec<CategoryMeans> {
        self.categories
            .iter()
            .map(|(category, sums)| CategoryMeans {
                category: category.clone(),
                scores: sums.means(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(metric: MetricName, output: &str, target: &str, expected_json: &str) {
        let scores = score_record(metric, output, target);
        let got = serde_json::to_string(&scores).expect("scores serialize");
        assert_eq!(got, expected_json, "{metric} {output:?} {target:?}");
    }

    #[test]
    fn records_serialize_like_fmeval() {
        check(
            MetricName::QaAccuracy,
            "The crisis began in October 1973.",
            "October 1973<OR>October<OR>1973",
            r#"[{"name":"f1_score","value":0.5714285714285714},{"name":"exact_match_score","value":0.0},{"name":"quasi_exact_match_score","value":0.0},{"name":"precision_over_words","value":0.4},{"name":"recall_over_words","value":1.0}]"#,
        );
        check(
            MetricName::FactualKnowledge,
            "It is in France",
            "France",
            r#"[{"name":"factual_knowledge","value":1}]"#,
        );
        check(
            MetricName::FactualKnowledge,
            "Germany",
            "France",
            r#"[{"name":"factual_knowledge","value":0}]"#,
        );
        check(MetricName::QaAccuracyByLlm, "x", "y", "[]");
    }

    #[test]
    fn tasks_offer_their_metrics() {
        for task in Task::ALL {
            assert_eq!(task.as_str().parse(), Ok(task));
            assert!(!task.metrics().is_empty());
        }
        assert_eq!(
            Task::Summarization.metrics(),
            [MetricName::SummarizationAccuracy]
        );
        assert!("translation".parse::<Task>().is_err());
        assert_eq!(
            MetricName::ClassificationAccuracySemanticRobustness.base(),
            MetricName::ClassificationAccuracy
        );
    }

    #[test]
    fn classification_records_score_integers() {
        let labels = classification::ValidLabels::new(["positive", "negative"]);
        let (predicted, score) = score_classification(&labels, "Negative, I think", "negative");
        assert_eq!(predicted, "unknown");
        assert_eq!(
            serde_json::to_string(&score).expect("serializes"),
            r#"{"name":"classification_accuracy_score","value":0}"#
        );
        let (_, score) = score_classification(&labels, "negative ", "negative");
        assert_eq!(score.value, ScoreValue::Int(1));
    }

    #[test]
    fn score_names_match_score_record() {
        for metric in [
            MetricName::QaAccuracy,
            MetricName::FactualKnowledge,
            MetricName::SummarizationAccuracy,
        ] {
            let names: Vec<String> = score_record(metric, "a", "a")
                .into_iter()
                .map(|score| score.name)
                .collect();
            assert_eq!(names, metric.score_names());
        }
    }

    #[test]
    fn names_round_trip() {
        for metric in MetricName::ALL {
            assert_eq!(metric.to_string().parse::<MetricName>(), Ok(metric));
            let json = serde_json::to_string(&metric).expect("metric serializes");
            assert_eq!(json, format!("\"{metric}\""));
        }
        assert_eq!(
            "bleu".parse::<MetricName>().map_err(|error| error.to_string()),
            Err("unknown metric `bleu` (expected qa_accuracy, factual_knowledge, qa_accuracy_by_llm, classification_accuracy, summarization_accuracy, qa_accuracy_semantic_robustness or classification_accuracy_semantic_robustness)".to_owned())
        );
    }

    #[test]
    fn score_values_round_trip_through_json() {
        let values: Vec<ScoreValue> = serde_json::from_str("[1, 0, 1.0, 0.5]").expect("valid JSON");
        assert_eq!(
            values,
            [
                ScoreValue::Int(1),
                ScoreValue::Int(0),
                ScoreValue::Float(1.0),
                ScoreValue::Float(0.5)
            ]
        );
    }

    #[test]
    fn score_values_display_like_python() {
        let shown: Vec<String> = [
            ScoreValue::Int(1),
            ScoreValue::Float(1.0),
            ScoreValue::Float(0.0),
            ScoreValue::Float(2.0 / 3.0),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(shown, ["1", "1.0", "0.0", "0.6666666666666666"]);
    }

    #[test]
    fn means_overall_and_per_category() {
        let mut accumulator = MeanAccumulator::new();
        let rows = [
            ("France", "France", Some("geo")),
            ("no idea", "Paris", Some("geo")),
            ("8", "8", Some("science")),
            ("x", "y", None),
        ];
        for (output, target, category) in rows {
            let mut scores = score_record(MetricName::FactualKnowledge, output, target);
            scores.extend(score_record(MetricName::QaAccuracy, output, target));
            accumulator.add(&scores, category);
        }
        assert_eq!(accumulator.n_records(), 4);
        assert_eq!(accumulator.mean("factual_knowledge"), Some(0.5));
        assert_eq!(accumulator.mean("exact_match_score"), Some(0.5));
        assert_eq!(accumulator.mean("bleu"), None);
        let names: Vec<String> = accumulator
            .means()
            .into_iter()
            .map(|mean| mean.name)
            .collect();
        assert_eq!(names[0], "factual_knowledge");
        assert_eq!(names[1], "f1_score");
        let categories = accumulator.category_means();
        assert_eq!(categories.len(), 2);
        assert_eq!(categories[0].category, "geo");
        assert_eq!(
            categories[0].scores[0],
            MeanScore {
                name: "factual_knowledge".to_owned(),
                value: 0.5,
                count: 2
            }
        );
        assert_eq!(categories[1].category, "science");
        assert_eq!(categories[1].scores[0].value, 1.0);
    }

    #[test]
    fn means_of_nothing_are_empty() {
        let accumulator = MeanAccumulator::new();
        assert!(accumulator.means().is_empty());
        assert!(accumulator.category_means().is_empty());
    }
}
