//! Run results as files and tables: `records.jsonl` (fmeval-compatible), `records.csv`,
//! `summary.json`, and the summary table printed by the CLI.
//!
//! Invariants: records are exported from the store in selection order (dataset order, or
//! fmeval's shuffled sample order for `--sample`), then model order, so the files are the same
//! whatever order the calls finished in; model outputs are written exactly as returned; one
//! streaming pass over the store writes the files and computes the summary (memory O(models ×
//! metrics) plus one latency per record for the percentiles). Every `records.jsonl` line ends
//! with a newline (fmeval's file lacks the last one; JSON Lines readers accept both).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runner::RunOutcome;
use crate::task::{ClassificationStats, ClassificationSummary};
use fmeval_scoring::metrics::{CategoryMeans, MeanAccumulator, MeanScore, Score};
use store::{JudgeReply, PerturbedAnswer, RecordRow, RunStatus, Store, StoreError, UserId};

/// Writing or reading result files failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file could not be written or read.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CSV writer failed.
    #[error("{}", .path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// A records.jsonl line did not parse.
    #[error("{}:{line}: not a record of a previous run", .path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A result file of `--out` is one of the run's inputs.
    #[error("--out {}: {} is the input {}; writing the results would destroy it, so choose another --out", .dir.display(), .file, .input.display())]
    OverwritesInput {
        /// The output directory.
        dir: PathBuf,
        /// The result file's name.
        file: &'static str,
        /// The input it is (as given).
        input: PathBuf,
    },
    /// `--out` already holds results and replacing them was not asked for.
    #[error("--out {}: already holds results ({}); pass --replace to overwrite them, or choose another --out", .dir.display(), .files.join(", "))]
    HoldsResults {
        /// The output directory.
        dir: PathBuf,
        /// The result files found.
        files: Vec<&'static str>,
    },
    /// `--out` (or a result file in it) cannot be written.
    #[error("--out {}: cannot write {} (checked before any model call)", .dir.display(), .path.display())]
    NotWritable {
        /// The output directory.
        dir: PathBuf,
        /// What could not be written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The files [`export`] writes into its directory.
pub const RESULT_FILES: [&str; 3] = ["records.jsonl", "records.csv", "summary.json"];

/// Makes `dir` ready for [`export`] before a run starts, so that nothing is lost or paid for in
/// vain: creates it (0700 when new), refuses it when a result file there is one of `inputs`
/// (even with `replace`: a previous run's records.jsonl used as the dataset), refuses existing
/// results unless `replace`, and checks that every result file can be written.
pub fn prepare_out_dir(dir: &Path, inputs: &[&Path], replace: bool) -> Result<(), OutputError> {
    use std::os::unix::fs::MetadataExt;
    let not_writable = |path: &Path, source| OutputError::NotWritable {
        dir: dir.to_path_buf(),
        path: path.to_path_buf(),
        source,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(not_writable(
            dir,
            std::io::Error::other("it exists and is not a directory"),
        ));
    }
    store::private_fs::create_dir_all(dir).map_err(|source| not_writable(dir, source))?;
    let identity = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
    };
    let inputs: Vec<(&Path, (u64, u64))> = inputs
        .iter()
        .filter_map(|input| Some((*input, identity(input)?)))
        .collect();
    let mut existing = Vec::new();
    for file in RESULT_FILES {
        let path = dir.join(file);
        let Some(id) = identity(&path) else {
            continue;
        };
        if let Some((input, _)) = inputs.iter().find(|(_, input_id)| *input_id == id) {
            return Err(OutputError::OverwritesInput {
                dir: dir.to_path_buf(),
                file,
                input: input.to_path_buf(),
            });
        }
        existing.push(file);
    }
    if !existing.is_empty() && !replace {
        return Err(OutputError::HoldsResults {
            dir: dir.to_path_buf(),
            files: existing,
        });
    }
    for file in &existing {
        // Opened for writing without truncating: the old results stay until the run ends.
        let path = dir.join(file);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|source| not_writable(&path, source))?;
    }
    let probe = dir.join(format!(".llm-eval-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|source| not_writable(dir, source))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// A column of a run: a (prompt variant, model) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The prompt variant's label.
    pub variant: String,
    /// The model's label.
    pub model: String,
}

/// How pages and the terminal name a column: `variant · model` when the run has several
/// variants, the model alone otherwise.
pub fn column_title(variant: &str, model: &str, several_variants: bool) -> String {
    if several_variants {
        format!("{variant} · {model}")
    } else {
        model.to_string()
    }
}

/// Per-column figures of a run: one prompt variant with one model (with a single variant,
/// one line per model, as before variants existed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// The model label.
    pub model: String,
    /// The prompt variant's label (empty in summaries written before variants existed).
    #[serde(default)]
    pub variant: String,
    /// Records evaluated (succeeded or failed).
    pub n_records: usize,
    /// Records that failed.
    pub n_failed: usize,
    /// Mean per score over the successful records, in fmeval order.
    pub scores: Vec<MeanScore>,
    /// Means per `category`, when the dataset has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryMeans>,
    /// The confusion matrix of a classification run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationSummary>,
    /// Median latency of the successful calls (ms; cache hits, which made no call, are left
    /// out; `None` when every answer came from the cache).
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile latency (ms).
    pub latency_p95_ms: Option<f64>,
    /// Input tokens spent by this run's calls (answers reused from the cache or an earlier
    /// run are counted in `saved_input_tokens` instead).
    pub input_tokens: u64,
    /// Output tokens spent by this run's calls.
    pub output_tokens: u64,
    /// Cost in USD of this run's calls, when the catalog has prices.
    pub cost_usd: Option<f64>,
    /// Answers reused from the response cache or an earlier run (no call was paid for).
    #[serde(default)]
    pub n_cached: usize,
    /// Input tokens the reused answers would have cost.
    #[serde(default)]
    pub saved_input_tokens: u64,
    /// Output tokens the reused answers would have cost.
    #[serde(default)]
    pub saved_output_tokens: u64,
    /// What the reused answers would have cost in USD, when the catalog has prices.
    #[serde(default)]
    pub saved_cost_usd: Option<f64>,
}

/// What `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's id.
    pub run_id: String,
    /// Finished or cancelled.
    pub status: RunStatus,
    /// Planned (record, model) evaluations.
    pub total: usize,
    /// Successful evaluations.
    pub done: usize,
    /// Failed evaluations.
    pub failed: usize,
    /// Wall-clock seconds.
    pub elapsed_secs: f64,
    /// The run's configuration.
    pub config: Value,
    /// Per column (variant × model), in column order.
    pub models: Vec<ModelSummary>,
}

impl Summary {
    /// The mean of `score` for `model` under the first variant that has it, if computed.
    pub fn mean(&self, model: &str, score: &str) -> Option<f64> {
        let model = self.models.iter().find(|summary| summary.model == model)?;
        model.mean(score)
    }

    /// The variant labels of the run, in order (one empty label for a summary written before
    /// variants existed).
    pub fn variants(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for line in &self.models {
            if !labels.contains(&line.variant.as_str()) {
                labels.push(&line.variant);
            }
        }
        labels
    }

    /// The model labels of the run, in order.
    pub fn model_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for line in &self.models {
            if !labels.contains(&line.model.as_str()) {
                labels.push(&line.model);
            }
        }
        labels
    }

    /// The cost estimated before the run, when it was estimated.
    pub fn estimated_cost_usd(&self) -> Option<f64> {
        self.config.get("estimated_cost_usd")?.as_f64()
    }

    /// What the run's calls cost in all, when any column has prices.
    pub fn total_cost_usd(&self) -> Option<f64> {
        let costs: Vec<f64> = self
            .models
            .iter()
            .filter_map(|line| line.cost_usd)
            .collect();
        (!costs.is_empty()).then(|| costs.iter().sum())
    }

    /// The line of one column.
    pub fn cell(&self, variant: &str, model: &str) -> Option<&ModelSummary> {
        self.models
            .iter()
            .find(|line| line.variant == variant && line.model == model)
    }
}

impl ModelSummary {
    /// The mean of `score`, if computed.
    pub fn mean(&self, score: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|mean| mean.name == score)
            .map(|mean| mean.value)
    }
}

/// The fmeval-compatible JSON line of a record: `model_input, prompt, model_output,
/// target_output, [category], scores`, then our extras.
pub fn record_json(row: &RecordRow) -> Value {
    let mut line = Map::new();
    line.insert("model_input".into(), Value::from(row.model_input.clone()));
    line.insert("prompt".into(), Value::from(row.prompt.clone()));
    line.insert("model_output".into(), row.model_output.clone().into());
    line.insert("target_output".into(), row.target_output.clone().into());
    if let Some(category) = &row.category {
        line.insert("category".into(), Value::from(category.clone()));
    }
    line.insert(
        "scores".into(),
        serde_json::to_value(&row.scores).unwrap_or(Value::Null),
    );
    line.insert("index".into(), Value::from(row.index));
    line.insert("model".into(), Value::from(row.model.clone()));
    line.insert("variant".into(), Value::from(row.variant.clone()));
    line.insert("latency_ms".into(), row.latency_ms.into());
    line.insert("input_tokens".into(), row.input_tokens.into());
    line.insert("output_tokens".into(), row.output_tokens.into());
    line.insert("cost_usd".into(), row.cost_usd.into());
    line.insert("error".into(), row.error.clone().into());
    if !row.judge_replies.is_empty() {
        line.insert(
            "judge_replies".into(),
            serde_json::to_value(&row.judge_replies).unwrap_or(Value::Null),
        );
    }
    if !row.perturbations.is_empty() {
        line.insert(
            "perturbations".into(),
            serde_json::to_value(&row.perturbations).unwrap_or(Value::Null),
        );
    }
    Value::Object(line)
}

/// The shape of a `records.jsonl` line read back (`--retry-failed DIR`).
#[derive(Deserialize)]
struct RecordLine {
    model_input: String,
    prompt: String,
    model_output: Option<String>,
    target_output: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    scores: Vec<Score>,
    index: usize,
    model: String,
    #[serde(default)]
    variant: String,
    latency_ms: Option<f64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cost_usd: Option<f64>,
    error: Option<String>,
    #[serde(default)]
    judge_replies: Vec<JudgeReply>,
    #[serde(default)]
    perturbations: Vec<PerturbedAnswer>,
}

/// Reads the records of a previous run's `records.jsonl` (positions and model order are
/// recomputed by the run that reuses them).
pub fn read_records_jsonl(path: &Path) -> Result<Vec<RecordRow>, OutputError> {
    let mut rows = Vec::new();
    for_each_record_jsonl(path, |row| rows.push(row))?;
    Ok(rows)
}

/// The longest `records.jsonl` line [`for_each_record_jsonl`] reads.
const MAX_RESULT_LINE: u64 = 256 << 20;

/// Calls `visit` with each record of a previous run's `records.jsonl`, one line at a time
/// (memory does not grow with the file).
pub fn for_each_record_jsonl(
    path: &Path,
    mut visit: impl FnMut(RecordRow),
) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut n_rows = 0;
    let mut buffer = Vec::new();
    for line_idx in 0.. {
        buffer.clear();
        // A line holds a record's prompt, input, reference and answer: each within its own
        // limit, so a line beyond this is not one of ours and is not read into memory whole.
        let n_read = (&mut reader)
            .take(MAX_RESULT_LINE + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(io)?;
        if n_read == 0 {
            break;
        }
        if buffer.len() as u64 > MAX_RESULT_LINE {
            return Err(io(std::io::Error::other(format!(
                "line {} is longer than {}, more than any record of a run",
                line_idx + 1,
                crate::limits::ByteSize(MAX_RESULT_LINE)
            ))));
        }
        let line = String::from_utf8_lossy(&buffer);
        if line.trim().is_empty() {
            continue;
        }
        let parsed: RecordLine =
            serde_json::from_str(&line).map_err(|source| OutputError::Record {
                path: path.to_path_buf(),
                line: line_idx + 1,
                source,
            })?;
        visit(RecordRow {
            model: parsed.model,
            model_order: 0,
            variant: parsed.variant,
            position: n_rows,
            index: parsed.index,
            model_input: parsed.model_input,
            prompt: parsed.prompt,
            model_output: parsed.model_output,
            target_output: parsed.target_output,
            category: parsed.category,
            scores: parsed.scores,
            latency_ms: parsed.latency_ms,
            input_tokens: parsed.input_tokens,
            output_tokens: parsed.output_tokens,
            cost_usd: parsed.cost_usd,
            error: parsed.error,
            judge_replies: parsed.judge_replies,
            perturbations: parsed.perturbations,
            cached: false,
        });
        n_rows += 1;
    }
    Ok(())
}

#[derive(Default)]
struct ModelStats {
    n_records: usize,
    n_failed: usize,
    means: MeanAccumulator,
    latencies: Vec<f64>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: Option<f64>,
    n_cached: usize,
    saved_input_tokens: u64,
    saved_output_tokens: u64,
    saved_cost_usd: Option<f64>,
    classification: Option<ClassificationStats>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Builds the per-column summary from a run's rows, one row at a time (the CLI's export and
/// the web pages compute it the same way).
#[derive(Default)]
pub struct SummaryBuilder {
    stats: Vec<(Column, ModelStats)>,
    classification: Option<ClassificationStats>,
}

impl SummaryBuilder {
    /// A builder whose lines come in `columns` order (columns without rows still get a line).
    pub fn new(columns: &[Column]) -> SummaryBuilder {
        SummaryBuilder {
            stats: columns
                .iter()
                .map(|column| (column.clone(), ModelStats::default()))
                .collect(),
            classification: None,
        }
    }

    /// Adds what the run's stored configuration asks for beyond means: a classification run's
    /// dataset scores and confusion matrices (answers converted with the run's labels).
    pub fn with_config(mut self, config: &Value) -> SummaryBuilder {
        self.classification = ClassificationStats::for_config(config);
        for (_, stats) in &mut self.stats {
            stats.classification = self.classification.clone();
        }
        self
    }

    /// Counts one row.
    pub fn add(&mut self, row: &RecordRow) {
        let found = self
            .stats
            .iter()
            .position(|(column, _)| column.model == row.model && column.variant == row.variant);
        let index = match found {
            Some(index) => index,
            None => {
                let column = Column {
                    variant: row.variant.clone(),
                    model: row.model.clone(),
                };
                let stats = ModelStats {
                    classification: self.classification.clone(),
                    ..ModelStats::default()
                };
                self.stats.push((column, stats));
                self.stats.len() - 1
            }
        };
        let model_stats = &mut self.stats[index].1;
        model_stats.n_records += 1;
        if !row.is_ok() {
            model_stats.n_failed += 1;
            return;
        }
        model_stats.means.add(&row.scores, row.category.as_deref());
        if let (Some(classification), Some(output), Some(target)) = (
            &mut model_stats.classification,
            &row.model_output,
            &row.target_output,
        ) {
            classification.add(output, target, row.category.as_deref());
        }
        if row.cached {
            // No call was made: what it would have cost is what the reuse saved, and its
            // latency says nothing about the model's speed.
            model_stats.n_cached += 1;
            model_stats.saved_input_tokens += row.input_tokens.unwrap_or(0);
            model_stats.saved_output_tokens += row.output_tokens.unwrap_or(0);
            if let Some(cost) = row.cost_usd {
                *model_stats.saved_cost_usd.get_or_insert(0.0) += cost;
            }
            return;
        }
        // A cache hit of an older store (latency 0, no flag) is no call either.
        model_stats
            .latencies
            .extend(row.latency_ms.filter(|latency_ms| *latency_ms > 0.0));
        model_stats.input_tokens += row.input_tokens.unwrap_or(0);
        model_stats.output_tokens += row.output_tokens.unwrap_or(0);
        if let Some(cost) = row.cost_usd {
            *model_stats.cost_usd.get_or_insert(0.0) += cost;
        }
    }

    /// The per-model summaries.
    pub fn finish(self) -> Vec<ModelSummary> {
        self.stats
            .into_iter()
            .map(|(column, mut stats)| {
                stats.latencies.sort_by(f64::total_cmp);
                let mut scores = stats.means.means();
                let mut categories = stats.means.category_means();
                let classification = stats
                    .classification
                    .as_ref()
                    .map(|classification| classification.finish(&mut scores, &mut categories));
                ModelSummary {
                    model: column.model,
                    variant: column.variant,
                    n_records: stats.n_records,
                    n_failed: stats.n_failed,
                    scores,
                    categories,
                    classification,
                    latency_p50_ms: percentile(&stats.latencies, 50.0),
                    latency_p95_ms: percentile(&stats.latencies, 95.0),
                    input_tokens: stats.input_tokens,
                    output_tokens: stats.output_tokens,
                    cost_usd: stats.cost_usd,
                    n_cached: stats.n_cached,
                    saved_input_tokens: stats.saved_input_tokens,
                    saved_output_tokens: stats.saved_output_tokens,
                    saved_cost_usd: stats.saved_cost_usd,
                }
            })
            .collect()
    }
}

/// The header of `records.csv`: fmeval's columns, one per score, then ours.
pub fn csv_header(score_names: &[&str]) -> Vec<String> {
    let mut header: Vec<String> = [
        "model_input",
        "prompt",
        "model_output",
        "target_output",
        "category",
    ]
    .map(String::from)
    .to_vec();
    header.extend(score_names.iter().map(|name| name.to_string()));
    header.extend(
        [
            "index",
            "model",
            "variant",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "error",
            "judge_replies",
        ]
        .map(String::from),
    );
    header
}

/// A text cell of `records.csv` made safe for spreadsheets: a cell that begins with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be run as a formula (CSV injection), so it gets
/// a leading `'`, which spreadsheets show as text. Model outputs and dataset fields are
/// untrusted text; numbers are written by us and never escaped.
pub fn csv_text_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

/// The cells of one `records.csv` row, in [`csv_header`] order.
pub fn csv_fields(row: &RecordRow, score_names: &[&str]) -> Vec<String> {
    let text = |value: Option<&str>| value.map(csv_text_cell).unwrap_or_default();
    let optional = |value: Option<String>| value.unwrap_or_default();
    let mut fields = vec![
        csv_text_cell(&row.model_input),
        csv_text_cell(&row.prompt),
        text(row.model_output.as_deref()),
        text(row.target_output.as_deref()),
        text(row.category.as_deref()),
    ];
    for name in score_names {
        let value = row.scores.iter().find(|score| score.name == *name);
        fields.push(
            value
                .map(|score| score.value.to_string())
                .unwrap_or_default(),
        );
    }
    fields.extend([
        row.index.to_string(),
        csv_text_cell(&row.model),
        csv_text_cell(&row.variant),
        optional(row.latency_ms.map(|ms| format!("{ms:.3}"))),
        optional(row.input_tokens.map(|n| n.to_string())),
        optional(row.output_tokens.map(|n| n.to_string())),
        optional(row.cost_usd.map(|cost| cost.to_string())),
        text(row.error.as_deref()),
        if row.judge_replies.is_empty() {
            String::new()
        } else {
            csv_text_cell(&serde_json::to_string(&row.judge_replies).unwrap_or_default())
        },
    ]);
    fields
}

/// The score names a run computes, from its stored configuration (`metrics`), in fmeval order.
pub fn score_names_of_config(config: &Value) -> Vec<&'static str> {
    let mut names = Vec::new();
    for metric in config
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(metric) = metric.parse::<fmeval_scoring::metrics::MetricName>() {
            names.extend(metric.score_names().iter().copied());
        }
    }
    names
}

/// Writes `records.jsonl`, `records.csv` and `summary.json` of a run into `dir` (created when
/// missing), stores the summary with the run and returns it. `columns` gives the run's
/// (variant, model) columns in order, `score_names` the score columns of the CSV.
pub async fn export(
    store: &dyn Store,
    owner: &UserId,
    outcome: &RunOutcome,
    config: Value,
    columns: &[Column],
    score_names: &[&str],
    dir: &Path,
) -> Result<Summary, OutputError> {
    store::private_fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let jsonl_path = dir.join("records.jsonl");
    let csv_path = dir.join("records.csv");
    let io_jsonl = |source| OutputError::Io {
        path: jsonl_path.clone(),
        source,
    };
    // Private: the files hold every prompt and answer.
    let mut jsonl = BufWriter::new(store::private_fs::create(&jsonl_path).map_err(io_jsonl)?);
    let csv_error = |source| OutputError::Csv {
        path: csv_path.clone(),
        source,
    };
    let csv_file = store::private_fs::create(&csv_path).map_err(|source| OutputError::Io {
        path: csv_path.clone(),
        source,
    })?;
    let mut csv = csv::Writer::from_writer(csv_file);
    csv.write_record(csv_header(score_names))
        .map_err(csv_error)?;

    let mut builder = SummaryBuilder::new(columns).with_config(&config);
    store::for_each_record(store, owner, &outcome.run_id, |row| {
        serde_json::to_writer(&mut jsonl, &record_json(&row))
            .map_err(|error| io_jsonl(error.into()))?;
        jsonl.write_all(b"\n").map_err(io_jsonl)?;
        csv.write_record(csv_fields(&row, score_names))
            .map_err(csv_error)?;
        builder.add(&row);
        Ok::<(), OutputError>(())
    })
    .await?;
    jsonl.flush().map_err(io_jsonl)?;
    csv.flush().map_err(|source| OutputError::Io {
        path: csv_path.clone(),
        source,
    })?;

    let summary = Summary {
        run_id: outcome.run_id.clone(),
        status: outcome.status,
        total: outcome.total,
        done: outcome.done,
        failed: outcome.failed,
        elapsed_secs: outcome.elapsed.as_secs_f64(),
        config,
        models: builder.finish(),
    };
    // What the run keeps beside the scores: a batch run's jobs and reason, and its retries.
    let mut stored = serde_json::to_value(&summary).unwrap_or(Value::Null);
    if let Some(kept) = store
        .run(owner, &outcome.run_id)
        .await?
        .and_then(|run| run.summary)
        && let Some(object) = stored.as_object_mut()
    {
        for field in KEPT_SUMMARY_FIELDS {
            if let Some(value) = kept.get(field) {
                object.insert(field.to_owned(), value.clone());
            }
        }
    }
    store
        .finish_run(owner, &outcome.run_id, outcome.status, &stored)
        .await?;
    let summary_path = dir.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    store::private_fs::create(&summary_path)
        .and_then(|mut file| file.write_all((text + "\n").as_bytes()))
        .map_err(|source| OutputError::Io {
            path: summary_path,
            source,
        })?;
    Ok(summary)
}

/// The fields of a run's stored summary that [`export`] keeps when it stores the scores: a
/// batch run's jobs (`batch`), why it failed (`error`) and its retries (`batch_retries`).
const KEPT_SUMMARY_FIELDS: [&str; 3] = ["batch", "error", "batch_retries"];

/// The summary table printed on stdout: one line per model × score, then per-model figures.
pub fn render_table(summary: &Summary) -> String {
    let several_variants = summary.variants().len() > 1;
    let column_name =
        |line: &ModelSummary| column_title(&line.variant, &line.model, several_variants);
    let mut rows: Vec<[String; 4]> = vec![[
        if several_variants {
            "variant · model".into()
        } else {
            "model".into()
        },
        "metric".into(),
        "mean".into(),
        "n".into(),
    ]];
    for model in &summary.models {
        for score in &model.scores {
            rows.push([
                column_name(model),
                score.name.clone(),
                format!("{:.4}", score.value),
                score.count.to_string(),
            ]);
        }
    }
    let mut out = aligned_columns(&rows);
    out.push('\n');
    if several_variants {
        for matrix in matrices(summary) {
            out.push_str(&matrix.render_text());
            out.push('\n');
        }
    }
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |ms| format!("{ms:.0} ms"));
    for model in &summary.models {
        let cost = model.cost_usd.map_or_else(|| "-".to_string(), format_usd);
        out.push_str(&format!(
            "{}: {} records, {} failed, latency p50 {} p95 {}, tokens {} in / {} out, cost {}\n",
            column_name(model),
            model.n_records,
            model.n_failed,
            ms(model.latency_p50_ms),
            ms(model.latency_p95_ms),
            model.input_tokens,
            model.output_tokens,
            cost,
        ));
        if model.n_cached > 0 {
            let saved = model
                .saved_cost_usd
                .map_or_else(|| "-".to_string(), format_usd);
            out.push_str(&format!(
                "{}: {} answers reused (cache or earlier run), saved tokens {} in / {} out, cost {}\n",
                column_name(model),
                model.n_cached,
                model.saved_input_tokens,
                model.saved_output_tokens,
                saved,
            ));
        }
    }
    let status = match summary.status {
        RunStatus::Cancelled => " (cancelled)",
        _ => "",
    };
    out.push_str(&format!(
        "run {}{status}: {} done, {} failed of {} in {:.2} s\n",
        summary.run_id, summary.done, summary.failed, summary.total, summary.elapsed_secs
    ));
    out
}

/// One score of a run as a matrix: prompt variants (rows) × models (columns), each cell the
/// score's mean over the cell's successful records, the best cell marked. The CLI prints it
/// and the web app draws it from the same function.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// The score's name.
    pub score: String,
    /// Variant labels (rows).
    pub variants: Vec<String>,
    /// Model labels (columns).
    pub models: Vec<String>,
    /// `means[variant][model]`.
    pub means: Vec<Vec<Option<f64>>>,
    /// The (variant, model) of the highest mean (the first in row order on a tie).
    pub best: Option<(usize, usize)>,
}

impl Matrix {
    /// The mean of a cell as text (`-` when the cell has none); the best cell is starred.
    pub fn cell_text(&self, variant: usize, model: usize) -> String {
        match self.means[variant][model] {
            None => "-".to_string(),
            Some(mean) if self.best == Some((variant, model)) => format!("{mean:.4} *"),
            Some(mean) => format!("{mean:.4}"),
        }
    }

    /// The mean of a cell.
    pub fn mean_at(&self, variant: &usize, model: &usize) -> Option<f64> {
        *self.means.get(*variant)?.get(*model)?
    }

    /// Whether a cell is the best.
    pub fn is_best(&self, variant: &usize, model: &usize) -> bool {
        self.best == Some((*variant, *model))
    }

    /// The matrix as aligned text, the CLI's form.
    pub fn render_text(&self) -> String {
        let mut out = format!("{} (variant × model, * best)\n", self.score);
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(self.variants.len() + 1);
        rows.push(
            std::iter::once("variant".to_string())
                .chain(self.models.iter().cloned())
                .collect(),
        );
        for (variant_idx, variant) in self.variants.iter().enumerate() {
            rows.push(
                std::iter::once(variant.clone())
                    .chain(
                        (0..self.models.len())
                            .map(|model_idx| self.cell_text(variant_idx, model_idx)),
                    )
                    .collect(),
            );
        }
        let n_columns = self.models.len() + 1;
        let widths: Vec<usize> = (0..n_columns)
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// One [`Matrix`] per score of the run, in the summary's score order.
pub fn matrices(summary: &Summary) -> Vec<Matrix> {
    let variants: Vec<String> = summary.variants().into_iter().map(str::to_string).collect();
    let models: Vec<String> = summary
        .model_labels()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut scores: Vec<String> = Vec::new();
    for line in &summary.models {
        for mean in &line.scores {
            if !scores.contains(&mean.name) {
                scores.push(mean.name.clone());
            }
        }
    }
    scores
        .into_iter()
        .map(|score| {
            let means: Vec<Vec<Option<f64>>> = variants
                .iter()
                .map(|variant| {
                    models
                        .iter()
                        .map(|model| {
                            summary
                                .cell(variant, model)
                                .and_then(|line| line.mean(&score))
                        })
                        .collect()
                })
                .collect();
            let mut best: Option<(usize, usize, f64)> = None;
            for (variant_idx, row) in means.iter().enumerate() {
                for (model_idx, mean) in row.iter().enumerate() {
                    if let Some(mean) = *mean
                        && best.is_none_or(|(_, _, top)| mean > top)
                    {
                        best = Some((variant_idx, model_idx, mean));
                    }
                }
            }
            Matrix {
                score,
                variants: variants.clone(),
                models: models.clone(),
                means,
                best: best.map(|(variant, model, _)| (variant, model)),
            }
        })
        .collect()
}

/// Rows as left-aligned columns two spaces apart, one line each (trailing spaces trimmed).
pub fn aligned_columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: [usize; N] = std::array::from_fn(|column| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    });
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A dollar amount with four decimals, or four significant digits below a cent, so that the
/// cost of a small run does not print as `$0.0000`.
fn format_usd(cost: f64) -> String {
    if cost == 0.0 || cost.abs() >= 0.01 || !cost.is_finite() {
        return format!("${cost:.4}");
    }
    let decimals = (-cost.abs().log10().floor()) as usize + 3;
    format!("${cost:.decimals$}")
}

/// A `--fail-under METRIC=VALUE` threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// A score name (`f1_score`, `factual_knowledge`, ...) or a metric whose first score is
    /// meant (`qa_accuracy` means `f1_score`).
    pub metric: String,
    /// The lowest acceptable mean.
    pub value: f64,
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Threshold, String> {
        let (metric, value) = text
            .split_once('=')
            .ok_or_else(|| format!("expected METRIC=VALUE, got `{text}`"))?;
        let metric = metric.trim();
        if metric.is_empty() {
            return Err(format!("missing metric name in `{text}`"));
        }
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number", value.trim()))?;
        if !value.is_finite() {
            return Err(format!("`{value}` is not a finite number"));
        }
        Ok(Threshold {
            metric: metric.to_string(),
            value,
        })
    }
}

/// A model that misses a `--fail-under` threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The model.
    pub model: String,
    /// The score name.
    pub score: String,
    /// The model's mean, or `None` when none of its records was scored (all failed).
    pub mean: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// The model's failed records.
    pub n_failed: usize,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.mean {
            Some(mean) => write!(
                formatter,
                "{} {} mean {mean:.4} is below {}",
                self.model, self.score, self.threshold
            ),
            None => write!(
                formatter,
                "{} {}: no record was scored ({} failed), so it cannot reach {}",
                self.model, self.score, self.n_failed, self.threshold
            ),
        }
    }
}

/// The score name a threshold refers to: a score name as is, a metric name as its first score.
pub fn threshold_score_name(metric: &str) -> String {
    match metric.parse::<fmeval_scoring::metrics::MetricName>() {
        Ok(name) => name.score_names()[0].to_string(),
        Err(_) => metric.to_string(),
    }
}

/// Every (model, threshold) pair the run misses: a mean below the threshold, or no mean at all
/// because none of the model's records was scored. A gate must not pass because a model failed
/// on every record, so a missing mean is a violation, never skipped. (That the run computes the
/// score at all is checked before the run, against the metrics asked for.)
pub fn check_thresholds(summary: &Summary, thresholds: &[Threshold]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let several_variants = summary.variants().len() > 1;
    for threshold in thresholds {
        let score = threshold_score_name(&threshold.metric);
        for model in &summary.models {
            let mean = model
                .scores
                .iter()
                .find(|mean| mean.name == score)
                .map(|mean| mean.value);
            if mean.is_none_or(|mean| mean < threshold.value) {
                violations.push(Violation {
                    model: if several_variants {
                        format!("{} (variant {})", model.model, model.variant)
                    } else {
                        model.model.clone()
                    },
                    score: score.clone(),
                    mean,
                    threshold: threshold.value,
                    n_failed: model.n_failed,
                });
            }
        }
    }
    violations
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fmeval_scoring::metrics::ScoreValue;

    fn check_threshold(input: &str, expected: Result<(&str, f64), ()>) {
        let got = input
            .parse::<Threshold>()
            .map(|t| (t.metric, t.value))
            .map_err(|_| ());
        assert_eq!(got, expected.map(|(m, v)| (m.to_string(), v)), "{input}");
    }

    #[test]
    fn threshold_parsing() {
        check_threshold("f1_score=0.5", Ok(("f1_score", 0.5)));
        check_threshold(" qa_accuracy = 1 ", Ok(("qa_accuracy", 1.0)));
        check_threshold("f1_score", Err(()));
        check_threshold("=0.5", Err(()));
        check_threshold("f1_score=abc", Err(()));
        check_threshold("f1_score=NaN", Err(()));
        check_threshold("f1_score=inf", Err(()));
    }

    proptest::proptest! {
        #[test]
        fn threshold_parser_never_panics(text in ".*") {
            let _ = text.parse::<Threshold>();
        }
    }

    fn check_usd(cost: f64, expected: &str) {
        assert_eq!(format_usd(cost), expected, "{cost}");
    }

    #[test]
    fn regression_small_costs_do_not_print_as_zero() {
        check_usd(0.0, "$0.0000");
        check_usd(12.345678, "$12.3457");
        check_usd(0.01, "$0.0100");
        check_usd(0.000054, "$0.00005400");
        check_usd(0.0099999, "$0.010000");
        check_usd(2.7e-6, "$0.000002700");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(10.0));
        assert_eq!(percentile(&values, 95.0), Some(19.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn row() -> RecordRow {
        RecordRow {
            model: "openai:m".into(),
            model_order: 0,
            variant: String::new(),
            position: 0,
            index: 3,
            model_input: "Q?".into(),
            prompt: "Q?".into(),
            model_output: Some(" Paris\n".into()),
            target_output: Some("Paris<OR>paris".into()),
            category: None,
            scores: vec![
                Score {
                    name: "f1_score".into(),
                    value: ScoreValue::Float(1.0),
                },
                Score {
                    name: "factual_knowledge".into(),
                    value: ScoreValue::Int(1),
                },
            ],
            latency_ms: Some(12.0),
            input_tokens: Some(3),
            output_tokens: Some(1),
            cost_usd: None,
            error: None,
            judge_replies: vec![],
            perturbations: Vec::new(),
            cached: false,
        }
    }

    fn check_cell(text: &str, expected: &str) {
        assert_eq!(csv_text_cell(text), expected, "{text:?}");
    }

    #[test]
    fn regression_csv_cells_that_look_like_formulas_are_text() {
        check_cell("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")");
        check_cell("+1", "'+1");
        check_cell("-2+3", "'-2+3");
        check_cell("@SUM(A1)", "'@SUM(A1)");
        check_cell("\tx", "'\tx");
        check_cell("\rx", "'\rx");
        check_cell("Paris", "Paris");
        check_cell("", "");
        check_cell(" =x", " =x");
        let mut formula = row();
        formula.model_output = Some("=1+1".into());
        let fields = csv_fields(&formula, &["f1_score"]);
        assert_eq!(fields[2], "'=1+1");
        assert_eq!(fields[5], "1.0");
    }

    #[test]
    fn reused_answers_are_counted_apart_from_paid_calls() {
        let paid = RecordRow {
            cost_usd: Some(0.25),
            ..row()
        };
        let reused = RecordRow {
            cached: true,
            position: 1,
            cost_usd: Some(0.5),
            latency_ms: Some(0.0),
            ..row()
        };
        let mut builder = SummaryBuilder::new(&[Column {
            variant: String::new(),
            model: "openai:m".to_string(),
        }]);
        builder.add(&paid);
        builder.add(&reused);
        let summary = builder.finish().remove(0);
        assert_eq!(
            (
                summary.n_records,
                summary.n_cached,
                summary.input_tokens,
                summary.saved_input_tokens
            ),
            (2, 1, 3, 3)
        );
        assert_eq!(
            (summary.cost_usd, summary.saved_cost_usd),
            (Some(0.25), Some(0.5))
        );
        assert_eq!(summary.latency_p50_ms, Some(12.0));
        assert_eq!(summary.scores[0].count, 2);
    }

    #[test]
    fn record_json_has_fmeval_keys_first() {
        let line = serde_json::to_string(&record_json(&row())).unwrap();
        insta::assert_snapshot!(line);
    }

    #[test]
    fn summary_table() {
        let summary = Summary {
            run_id: "20260101T000000Z-0001".into(),
            status: RunStatus::Finished,
            total: 4,
            done: 3,
            failed: 1,
            elapsed_secs: 1.5,
            config: Value::Null,
            models: vec![ModelSummary {
                model: "openai:gpt-4o-mini".into(),
                n_records: 4,
                n_failed: 1,
                scores: vec![
                    MeanScore {
                        name: "f1_score".into(),
                        value: 0.5714285714285714,
                        count: 3,
                    },
                    MeanScore {
                        name: "factual_knowledge".into(),
                        value: 1.0,
                        count: 3,
                    },
                ],
                categories: vec![],
                latency_p50_ms: Some(201.4),
                latency_p95_ms: Some(250.0),
                input_tokens: 1200,
                output_tokens: 30,
                cost_usd: Some(0.000225),
                ..ModelSummary::default()
            }],
        };
        insta::assert_snapshot!(render_table(&summary));
    }

    #[test]
    fn thresholds_against_summary() {
        let summary = Summary {
            run_id: "r".into(),
            status: RunStatus::Finished,
            total: 1,
            done: 1,
            failed: 0,
            elapsed_secs: 0.0,
            config: Value::Null,
            models: vec![ModelSummary {
                model: "m".into(),
                n_records: 1,
                n_failed: 0,
                scores: vec![MeanScore {
                    name: "f1_score".into(),
                    value: 0.5,
                    count: 1,
                }],
                categories: vec![],
                latency_p50_ms: None,
                latency_p95_ms: None,
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: None,
                ..ModelSummary::default()
            }],
        };
        let threshold = |metric: &str, value| Threshold {
            metric: metric.into(),
            value,
        };
        assert_eq!(
            check_thresholds(&summary, &[threshold("f1_score", 0.5)]).len(),
            0
        );
        assert_eq!(
            check_thresholds(&summary, &[threshold("qa_accuracy", 0.6)])[0].to_string(),
            "m f1_score mean 0.5000 is below 0.6"
        );
        assert_eq!(summary.mean("m", "f1_score"), Some(0.5));
    }

    #[test]
    fn regression_fail_under_model_without_scores_is_a_violation() {
        let model = |name: &str, scores: Vec<MeanScore>, n_failed| ModelSummary {
            model: name.into(),
            n_records: 2,
            n_failed,
            scores,
            categories: vec![],
            latency_p50_ms: None,
            latency_p95_ms: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: None,
            ..ModelSummary::default()
        };
        let scored = vec![MeanScore {
            name: "f1_score".into(),
            value: 1.0,
            count: 2,
        }];
        let summary = Summary {
            run_id: "r".into(),
            status: RunStatus::Finished,
            total: 4,
            done: 2,
            failed: 2,
            elapsed_secs: 0.0,
            config: Value::Null,
            models: vec![model("good", scored, 0), model("broken", vec![], 2)],
        };
        let threshold = Threshold {
            metric: "f1_score".into(),
            value: 0.5,
        };
        let violations: Vec<String> = check_thresholds(&summary, &[threshold])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            violations,
            ["broken f1_score: no record was scored (2 failed), so it cannot reach 0.5"]
        );
    }
}
