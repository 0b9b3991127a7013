//! A run's task type (question answering, classification, summarization, open generation) and
//! what it adds to plain per-record scoring: the metrics each type offers, the classification
//! label set (given, or fmeval's default: the distinct targets of the selected records), the
//! perturbation of semantic-robustness metrics and the field it perturbs, the category field
//! of per-category scores, and the dataset-level classification scores and confusion matrices
//! of a summary.
//!
//! Invariants: checked and resolved once, in [`crate::plan::build_plan`], before any model
//! call; the resolved labels are stored with the run, so a summary recomputed later (web
//! pages, exports, `--retry-failed`) predicts the same labels from the stored answers. No IO
//! here but the dataset pass of [`default_labels`] (a blocking read, bounded by
//! [`MAX_LABELS`]); no dependency on HTTP, pages or the store's backends.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::{Dataset, DatasetError, reference_text};
use fmeval_scoring::metrics::classification::{Average, ConfusionMatrix, ValidLabels};
use fmeval_scoring::metrics::{CategoryMeans, MeanScore, MetricName, Task};
use fmeval_scoring::perturbation::Perturbation;
use fmeval_scoring::sample::{Selection, selected_indices};

/// The most classification labels a run may have (given, or found among the targets).
pub const MAX_LABELS: usize = 1_000;

/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// The longest input a semantic robustness metric perturbs, in characters (each record in
/// flight keeps five perturbed copies); a longer one fails its record.
pub const MAX_PERTURBED_CHARS: usize = 100_000;

/// Records of a chosen category field that lack it are grouped under this name.
pub const NO_CATEGORY: &str = "(none)";

/// The field fmeval groups by when a dataset has it and no other field is chosen.
pub const DEFAULT_CATEGORY_FIELD: &str = "category";

/// What a request says about its task, before any check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRequest {
    /// The task type; `None`: inferred from the metrics (question answering when they fit
    /// several types).
    pub task: Option<Task>,
    /// Classification labels; empty: the distinct targets of the selected records.
    pub labels: Vec<String>,
    /// The field to group scores by; `None`: `category` when records have it.
    pub category_field: Option<String>,
    /// The average of `precision_score` and `recall_score`.
    pub average: Average,
    /// The perturbation of a semantic-robustness metric; `None`: fmeval's default,
    /// `butter_finger`.
    pub perturbation: Option<Perturbation>,
    /// The template field a semantic-robustness metric perturbs; `None`: the template's first
    /// field (what fmeval's `model_input` is in a one-field template).
    pub perturb_field: Option<String>,
}

impl TaskRequest {
    /// The task settings stored with a run ([`TaskPlan::config_entries`]).
    pub fn from_config(config: &Value) -> TaskRequest {
        TaskRequest {
            task: config
                .get("task")
                .and_then(Value::as_str)
                .and_then(|task| task.parse().ok()),
            labels: config
                .get("labels_given")
                .and_then(Value::as_array)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            category_field: config
                .get("category_field")
                .and_then(Value::as_str)
                .map(str::to_owned),
            average: config
                .get("average")
                .and_then(Value::as_str)
                .and_then(|average| average.parse().ok())
                .unwrap_or_default(),
            perturbation: config
                .get("perturbation")
                .and_then(Value::as_str)
                .and_then(|perturbation| perturbation.parse().ok()),
            perturb_field: config
                .get("perturbed_field")
                .and_then(Value::as_str)
                .filter(|field| !field.is_empty())
                .map(str::to_owned),
        }
    }
}

/// The task of a plan, checked and resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskPlan {
    /// The task type.
    pub task: Task,
    /// The labels the user gave (empty: the targets' were used).
    pub labels_given: Vec<String>,
    /// The label set answers are converted with (classification only).
    pub labels: Option<ValidLabels>,
    /// The raw label set (given, or the distinct targets), for the stored configuration.
    pub raw_labels: Vec<String>,
    /// The field chosen to group by (`None`: `category` when present).
    pub category_field: Option<String>,
    /// The average of precision and recall.
    pub average: Average,
    /// The perturbation of a semantic-robustness metric, and the template field it perturbs
    /// (fmeval perturbs the record's input, then fills the template).
    pub robustness: Option<(Perturbation, String)>,
}

impl TaskPlan {
    /// The record's category: the chosen field's value as Python's `str()` prints it
    /// ([`NO_CATEGORY`] when the record lacks it or it is null), or, with no field chosen, the
    /// `category` field's when present (pandas' groupby drops missing keys).
    pub fn category_of(&self, fields: &serde_json::Map<String, Value>) -> Option<String> {
        let value = fields
            .get(
                self.category_field
                    .as_deref()
                    .unwrap_or(DEFAULT_CATEGORY_FIELD),
            )
            .filter(|value| !value.is_null());
        match (value, &self.category_field) {
            (Some(value), _) => Some(fmeval_scoring::python::python_str(value).into_owned()),
            (None, Some(_)) => Some(NO_CATEGORY.to_owned()),
            (None, None) => None,
        }
    }

    /// The keys this task adds to a run's stored configuration.
    pub fn config_entries(&self) -> Vec<(&'static str, Value)> {
        let mut entries = vec![("task", Value::from(self.task.as_str()))];
        if self.labels.is_some() {
            entries.push(("labels", Value::from(self.raw_labels.clone())));
            entries.push(("labels_given", Value::from(self.labels_given.clone())));
            entries.push(("average", Value::from(self.average.as_str())));
        }
        if let Some(field) = &self.category_field {
            entries.push(("category_field", Value::from(field.clone())));
        }
        if let Some((perturbation, field)) = &self.robustness {
            entries.push(("perturbation", Value::from(perturbation.as_str())));
            entries.push(("perturbed_field", Value::from(field.clone())));
        }
        entries
    }
}

/// Why a task does not fit the request, in words for the metrics field.
pub fn check_metrics(task: Task, metrics: &[MetricName]) -> Result<(), String> {
    for metric in metrics {
        if !task.metrics().contains(metric) {
            let offered: Vec<&str> = task
                .metrics()
                .iter()
                .map(|metric| metric.as_str())
                .collect();
            return Err(format!(
                "metric `{metric}` is not one of the {task} task's ({})",
                offered.join(", ")
            ));
        }
    }
    Ok(())
}

/// The task type of metrics when none is given: the first type that offers them all.
pub fn infer_task(metrics: &[MetricName]) -> Task {
    Task::ALL
        .into_iter()
        .find(|task| metrics.iter().all(|metric| task.metrics().contains(metric)))
        .unwrap_or_default()
}

/// Checks given labels: at most [`MAX_LABELS`], none empty after `strip()` or longer than
/// [`MAX_LABEL_CHARS`].
pub fn check_labels(labels: &[String]) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{} labels given; at most {MAX_LABELS} are allowed",
            labels.len()
        ));
    }
    for label in labels {
        if fmeval_scoring::metrics::normalize::py_strip(label).is_empty() {
            return Err("a label is empty".to_owned());
        }
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err(format!(
                "label `{}…` is longer than {MAX_LABEL_CHARS} characters",
                label.chars().take(40).collect::<String>()
            ));
        }
    }
    Ok(())
}

/// fmeval's default label set: the distinct raw targets of the selected records, in first-seen
/// order (a blocking pass over the dataset). Records whose reference is unusable are skipped
/// (they fail on their own when evaluated).
pub fn default_labels(
    dataset: &Dataset,
    selection: Selection,
    reference_field: &str,
) -> Result<Vec<String>, DefaultLabelsError> {
    let count = dataset.count()?;
    let selected: Option<HashSet<usize>> =
        selected_indices(&selection, count).map(|indices| indices.into_iter().collect());
    let mut labels: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for record in dataset.records()? {
        let Ok(record) = record else { continue };
        if selected
            .as_ref()
            .is_some_and(|selected| !selected.contains(&record.index))
        {
            continue;
        }
        let Ok(target) = reference_text(&record, reference_field, dataset.path()) else {
            continue;
        };
        if seen.contains(&target) {
            continue;
        }
        if labels.len() == MAX_LABELS {
            return Err(DefaultLabelsError::TooMany);
        }
        if target.chars().count() > MAX_LABEL_CHARS {
            return Err(DefaultLabelsError::TooLong {
                line: record.line,
                field: reference_field.to_owned(),
            });
        }
        seen.insert(target.clone());
        labels.push(target);
    }
    if labels.is_empty() {
        return Err(DefaultLabelsError::None);
    }
    Ok(labels)
}

/// The default label set could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DefaultLabelsError {
    /// The dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// More distinct targets than a label set may have.
    #[error(
        "the selected records have more than {MAX_LABELS} distinct targets: not a classification dataset, or give the labels"
    )]
    TooMany,
    /// A target too long to be a label.
    #[error(
        "line {line}: the target in `{field}` is longer than {MAX_LABEL_CHARS} characters: not a class label (give the labels, or choose the label field)"
    )]
    TooLong {
        /// 1-based line.
        line: usize,
        /// The reference field.
        field: String,
    },
    /// No record has a usable target.
    #[error("no selected record has a usable target to take the labels from")]
    None,
}

/// A model's classification figures: the confusion matrix over all its successful records,
/// and per category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassificationSummary {
    /// The rows and columns of `matrix`: the sorted union of targets and predicted labels.
    pub labels: Vec<String>,
    /// `matrix[i][j]`: records whose target is `labels[i]` and whose prediction is `labels[j]`.
    pub matrix: Vec<Vec<u64>>,
    /// The precision and recall average used.
    pub average: Average,
}

impl ClassificationSummary {
    /// Each matrix row with its reference label, for tables.
    pub fn labelled_rows(&self) -> Vec<(&str, &[u64])> {
        self.labels
            .iter()
            .zip(&self.matrix)
            .map(|(label, row)| (label.as_str(), row.as_slice()))
            .collect()
    }
}

/// Accumulates one model's confusion matrices as rows arrive.
#[derive(Debug, Clone)]
pub struct ClassificationStats {
    labels: ValidLabels,
    average: Average,
    overall: ConfusionMatrix,
    categories: BTreeMap<String, ConfusionMatrix>,
}

impl ClassificationStats {
    /// Stats for answers converted with `labels`.
    pub fn new(labels: ValidLabels, average: Average) -> ClassificationStats {
        ClassificationStats {
            labels,
            average,
            overall: ConfusionMatrix::new(),
            categories: BTreeMap::new(),
        }
    }

    /// The stats a stored configuration asks for (`None`: not a classification run).
    pub fn for_config(config: &Value) -> Option<ClassificationStats> {
        let classifies = config
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|name| name.parse::<MetricName>().ok())
            .any(MetricName::is_classification);
        if !classifies {
            return None;
        }
        let labels: Vec<&str> = config
            .get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let average = config
            .get("average")
            .and_then(Value::as_str)
            .and_then(|average| average.parse().ok())
            .unwrap_or_default();
        Some(ClassificationStats::new(ValidLabels::new(labels), average))
    }

    /// Counts one successful record: its answer, converted as the run converted it, against
    /// its raw target.
    pub fn add(&mut self, model_output: &str, target: &str, category: Option<&str>) {
        let predicted = self.labels.predict(model_output);
        self.overall.add(target, &predicted);
        if let Some(category) = category {
            self.categories
                .entry(category.to_owned())
                .or_default()
                .add(target, &predicted);
        }
    }

    /// Adds the dataset scores after `classification_accuracy_score` in `scores`, and in every
    /// category's, and returns the overall confusion matrix.
    pub fn finish(
        &self,
        scores: &mut Vec<MeanScore>,
        categories: &mut [CategoryMeans],
    ) -> ClassificationSummary {
        insert_scores(&self.overall, self.average, scores);
        for category in categories.iter_mut() {
            if let Some(matrix) = self.categories.get(&category.category) {
                insert_scores(matrix, self.average, &mut category.scores);
            }
        }
        ClassificationSummary {
            labels: self.overall.labels(),
            matrix: self.overall.rows(),
            average: self.average,
        }
    }
}

/// `balanced_accuracy_score`, `precision_score`, `recall_score` after
/// `classification_accuracy_score` (or at the end when it is missing).
fn insert_scores(matrix: &ConfusionMatrix, average: Average, scores: &mut Vec<MeanScore>) {
    let Some(computed) = matrix.scores(average) else {
        return;
    };
    let count = matrix.n_records() as usize;
    let position = scores
        .iter()
        .position(|score| score.name == "classification_accuracy_score")
        .map_or(scores.len(), |position| position + 1);
    let named = computed.named();
    let extra = named[1..].iter().map(|(name, value)| MeanScore {
        name: (*name).to_owned(),
        value: *value,
        count,
    });
    let tail = scores.split_off(position);
    scores.extend(extra);
    scores.extend(tail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_from_metrics() {
        assert_eq!(infer_task(&[MetricName::QaAccuracy]), Task::Qa);
        assert_eq!(infer_task(&[MetricName::QaAccuracyByLlm]), Task::Qa);
        assert_eq!(
            infer_task(&[MetricName::ClassificationAccuracy]),
            Task::Classification
        );
        assert_eq!(
            infer_task(&[MetricName::SummarizationAccuracy]),
            Task::Summarization
        );
        assert_eq!(
            check_metrics(Task::Summarization, &[MetricName::QaAccuracy]),
            Err("metric `qa_accuracy` is not one of the summarization task's (summarization_accuracy)".to_owned())
        );
    }

    #[test]
    fn label_checks() {
        assert!(check_labels(&["a".into(), "b".into()]).is_ok());
        assert_eq!(
            check_labels(&[" ".into()]),
            Err("a label is empty".to_owned())
        );
        assert!(check_labels(&["x".repeat(201)]).is_err());
    }

    #[test]
    fn categories() {
        let fields: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"category": "geo", "topic": 3, "empty": null}"#)
                .expect("JSON");
        let mut plan = TaskPlan::default();
        assert_eq!(plan.category_of(&fields).as_deref(), Some("geo"));
        plan.category_field = Some("topic".into());
        assert_eq!(plan.category_of(&fields).as_deref(), Some("3"));
        plan.category_field = Some("empty".into());
        assert_eq!(plan.category_of(&fields).as_deref(), Some(NO_CATEGORY));
        let no_category = serde_json::Map::new();
        assert_eq!(TaskPlan::default().category_of(&no_category), None);
    }

    #[test]
    fn summary_scores_follow_accuracy() {
        let mut stats =
            ClassificationStats::new(ValidLabels::new(["positive", "negative"]), Average::Macro);
        stats.add("positive", "positive", Some("a"));
        stats.add("Negative!", "negative", Some("a"));
        stats.add("negative", "negative", Some("b"));
        let mut scores = vec![MeanScore {
            name: "classification_accuracy_score".into(),
            value: 2.0 / 3.0,
            count: 3,
        }];
        let mut categories = vec![CategoryMeans {
            category: "b".into(),
            scores: vec![],
        }];
        let summary = stats.finish(&mut scores, &mut categories);
        let names: Vec<&str> = scores.iter().map(|score| score.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "classification_accuracy_score",
                "balanced_accuracy_score",
                "precision_score",
                "recall_score"
            ]
        );
        assert_eq!(summary.labels, ["negative", "positive", "unknown"]);
        assert_eq!(summary.matrix, [[1, 0, 1], [0, 1, 0], [0, 0, 0]]);
        assert_eq!(categories[0].scores.len(), 3);
        assert_eq!(categories[0].scores[0].value, 1.0);
    }
}
