//! An evaluation request, checked and resolved into a runner [`EvalPlan`]: the one function the
//! CLI (`llm-eval eval`) and the web form share, so both refuse the same input with the same
//! words.
//!
//! Invariants: every check happens here, before any model is called (models and judges
//! resolve in the catalog and have a provider, metrics and judges fit together, the rubric
//! parses, the dataset has usable records, the template names only fields it has, the
//! reference field exists, the selection and runner settings are in range); each error names
//! the [`Field`] of the request it is about and speaks of the evaluation, never of a flag or a
//! form control (the CLI and the form add their own names). A request is stored with its run
//! ([`EvalPlan::config_json`]) and can be read back ([`EvalRequest::from_config`]) to clone
//! or resume the run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::catalog::{Catalog, ModelSpec};
use crate::dataset::{Dataset, Format};
use crate::judge::Rubric;
use crate::limits::ByteSize;
use crate::providers::{InferenceParams, Providers};
use crate::runner::{self, EvalPlan, ModelClient, RunnerConfig, Variant};
use crate::task::{self, TaskPlan, TaskRequest};
use crate::template::PromptTemplate;
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::perturbation::Perturbation;
use fmeval_scoring::sample::{DEFAULT_SEED, Selection};

/// The most concurrent requests per model.
pub const MAX_CONCURRENCY: usize = 1024;
/// The most attempts per request.
pub const MAX_ATTEMPTS: u32 = 100;
/// The longest per-request timeout: a day (longer is surely a typo).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// What the user asks to evaluate, before any check.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// The run's name (empty: none); [`store::check_run_label`] bounds it.
    pub name: String,
    /// The dataset file (JSON Lines or CSV).
    pub dataset: PathBuf,
    /// The prompt templates (variants), each evaluated with every model on the same records.
    pub templates: Vec<TemplateRequest>,
    /// The field holding the reference answer(s).
    pub reference_field: String,
    /// Models (`provider:model-id` or catalog aliases), in output order.
    pub models: Vec<String>,
    /// Metrics, in output order.
    pub metrics: Vec<MetricName>,
    /// Judge models of `qa_accuracy_by_llm`.
    pub judges: Vec<String>,
    /// The judge rubric text; `None`: the default rubric.
    pub rubric: Option<String>,
    /// Which records.
    pub selection: Selection,
    /// Inference parameters applied to every model over its catalog defaults.
    pub params: InferenceParams,
    /// Concurrent requests per model.
    pub concurrency: usize,
    /// Attempts per request for transient errors.
    pub max_attempts: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The longest wait before a retry, whatever an endpoint's `Retry-After` asks.
    pub max_retry_wait: Duration,
    /// The longest one record may take with one model, every attempt and wait included.
    pub record_timeout: Duration,
    /// The largest dataset record (a JSON Lines line or a CSV row) read; a larger one fails.
    pub max_record_size: ByteSize,
    /// The largest rendered prompt or judge prompt; one that would be larger fails while it is
    /// filled (see [`crate::template`]).
    pub max_prompt_size: ByteSize,
    /// The task type, classification labels and category field.
    pub task: TaskRequest,
}

impl EvalRequest {
    /// A request with the CLI's defaults for everything but the dataset, template, models and
    /// metrics.
    pub fn new(
        dataset: PathBuf,
        template: String,
        models: Vec<String>,
        metrics: Vec<MetricName>,
    ) -> EvalRequest {
        let defaults = RunnerConfig::default();
        EvalRequest {
            name: String::new(),
            dataset,
            templates: vec![TemplateRequest::unlabeled(template)],
            reference_field: "answers".to_string(),
            models,
            metrics,
            judges: Vec::new(),
            rubric: None,
            selection: Selection::All,
            params: InferenceParams::default(),
            concurrency: 8,
            max_attempts: 5,
            timeout: defaults.timeout,
            max_retry_wait: defaults.max_retry_wait,
            record_timeout: defaults.record_timeout,
            max_record_size: crate::limits::DEFAULT_MAX_RECORD,
            max_prompt_size: crate::limits::DEFAULT_MAX_PROMPT,
            task: TaskRequest::default(),
        }
    }
}

/// The most prompt variants one run evaluates.
pub const MAX_VARIANTS: usize = 10;
/// The longest variant label, in characters.
pub const MAX_VARIANT_LABEL_CHARS: usize = 40;

/// One prompt template of a request, with its label (empty: a letter is given, `A`, `B`, ...
/// in order).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRequest {
    /// The label the user gave, or empty.
    pub label: String,
    /// The template text.
    pub text: String,
}

impl TemplateRequest {
    /// A template without a label.
    pub fn unlabeled(text: String) -> TemplateRequest {
        TemplateRequest {
            label: String::new(),
            text,
        }
    }
}

/// The label of the variant at `index` when the user gave none: `A` ... `Z`, then `V27`, ...
pub fn default_label(index: usize) -> String {
    match u8::try_from(index) {
        Ok(index) if index < 26 => char::from(b'A' + index).to_string(),
        _ => format!("V{}", index + 1),
    }
}

/// The part of a request an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The run's name.
    Name,
    /// The dataset.
    Dataset,
    /// The prompt template.
    Template,
    /// The reference field.
    ReferenceField,
    /// The models.
    Models,
    /// The metrics.
    Metrics,
    /// The judge models.
    Judges,
    /// The judge rubric.
    Rubric,
    /// The record selection (count, sample size).
    Selection,
    /// Inference parameters.
    Params,
    /// Concurrency, attempts, timeouts, retry waits.
    Runner,
    /// The task type, classification labels and category field.
    Task,
}

impl Field {
    /// The field's name in stored configurations and forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Dataset => "dataset",
            Field::Template => "template",
            Field::ReferenceField => "reference_field",
            Field::Models => "models",
            Field::Metrics => "metrics",
            Field::Judges => "judges",
            Field::Rubric => "rubric",
            Field::Selection => "selection",
            Field::Params => "params",
            Field::Runner => "runner",
            Field::Task => "task",
        }
    }
}

/// A request that cannot be evaluated: which part, and why (the whole cause chain, in words
/// a user of the CLI or of the form can act on).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    /// The part of the request.
    pub field: Field,
    /// What is wrong.
    pub message: String,
    /// The limit that, raised, gets past the error (each interface names its own control).
    pub raise: Option<Limit>,
}

/// A limit of the request that an error can be solved by raising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`EvalRequest::max_record_size`].
    MaxRecordSize,
}

impl PlanError {
    fn new(field: Field, message: impl Into<String>) -> PlanError {
        PlanError {
            field,
            message: message.into(),
            raise: None,
        }
    }

    fn from_error(field: Field, error: &(dyn std::error::Error + 'static)) -> PlanError {
        PlanError::new(field, store::error_chain(error))
    }

    /// A dataset error, with the limit to raise when it is an oversized record.
    fn from_dataset(error: &crate::dataset::DatasetError) -> PlanError {
        let mut plan_error = PlanError::from_error(Field::Dataset, error);
        if matches!(error, crate::dataset::DatasetError::RecordTooLarge { .. }) {
            plan_error.raise = Some(Limit::MaxRecordSize);
        }
        plan_error
    }
}

/// Checks a request and resolves it into a plan: models and judges get their clients from
/// `providers` (no model is called). Dataset reading runs on a blocking thread.
pub async fn build_plan(
    request: &EvalRequest,
    catalog: &Catalog,
    providers: &Providers,
) -> Result<EvalPlan, PlanError> {
    store::check_run_label(&request.name, "").map_err(|why| PlanError::new(Field::Name, why))?;
    let models = resolve_models(catalog, &request.models, Field::Models)?;
    let judges = resolve_models(catalog, &request.judges, Field::Judges)?;
    if request.params.has_bedrock_options()
        && !models
            .iter()
            .chain(&judges)
            .any(|spec| spec.provider == crate::catalog::ProviderKind::Bedrock)
    {
        return Err(PlanError::new(
            Field::Params,
            "the service tier and latency are Amazon Bedrock options, and no model of this run is a Bedrock model",
        ));
    }
    if models.is_empty() {
        return Err(PlanError::new(Field::Models, "no model to evaluate"));
    }
    let metrics = unique_metrics(&request.metrics);
    if metrics.is_empty() {
        return Err(PlanError::new(Field::Metrics, "no metric to compute"));
    }
    let judged = metrics.contains(&MetricName::QaAccuracyByLlm);
    if judged && judges.is_empty() {
        return Err(PlanError::new(
            Field::Judges,
            "metric `qa_accuracy_by_llm` needs at least one judge model",
        ));
    }
    if !judged && !judges.is_empty() {
        return Err(PlanError::new(
            Field::Judges,
            "judge models are only used by the metric `qa_accuracy_by_llm`",
        ));
    }
    let task_type = request
        .task
        .task
        .unwrap_or_else(|| task::infer_task(&metrics));
    task::check_metrics(task_type, &metrics)
        .map_err(|message| PlanError::new(Field::Metrics, message))?;
    let robust = metrics.iter().any(|metric| metric.is_robustness());
    if !robust && request.task.perturbation.is_some() {
        return Err(PlanError::new(
            Field::Task,
            "a perturbation is only used by the semantic robustness metrics",
        ));
    }
    if !robust && request.task.perturb_field.is_some() {
        return Err(PlanError::new(
            Field::Task,
            "a perturbed field is only used by the semantic robustness metrics",
        ));
    }
    let classifies = metrics.iter().any(|metric| metric.is_classification());
    if !classifies && !request.task.labels.is_empty() {
        return Err(PlanError::new(
            Field::Task,
            "labels are only used by classification metrics",
        ));
    }
    if classifies {
        task::check_labels(&request.task.labels)
            .map_err(|message| PlanError::new(Field::Task, message))?;
    }
    if let Some(field) = &request.task.category_field
        && field.trim().is_empty()
    {
        return Err(PlanError::new(Field::Task, "the category field is empty"));
    }
    let rubric = match &request.rubric {
        Some(source) if !source.trim().is_empty() => Rubric::parse(&normalize_text(source))
            .map_err(|error| PlanError::from_error(Field::Rubric, &error))?,
        _ => Rubric::default_rubric(),
    }
    .with_max_rendered(request.max_prompt_size);
    if request.max_prompt_size.0 == 0 {
        return Err(PlanError::new(
            Field::Template,
            "the rendered-prompt limit must be at least 1 byte",
        ));
    }
    check_selection(request.selection)?;
    let config = runner_config(request)?;
    check_params(&request.params)?;
    let variants: Vec<Variant> = parse_variants(&request.templates)?
        .into_iter()
        .map(|variant| Variant {
            template: variant.template.with_max_rendered(request.max_prompt_size),
            ..variant
        })
        .collect();
    let (dataset, raw_labels) = {
        let path = request.dataset.clone();
        let reference_field = request.reference_field.clone();
        let variants = variants.clone();
        let max_record = request.max_record_size;
        let selection = request.selection;
        let task_request = request.task.clone();
        tokio::task::spawn_blocking(move || {
            let dataset = open_dataset(&path, max_record, &variants, &reference_field)?;
            check_category_field(&dataset, task_request.category_field.as_deref())?;
            let labels = if !classifies {
                Vec::new()
            } else if task_request.labels.is_empty() {
                task::default_labels(&dataset, selection, &reference_field)
                    .map_err(|error| PlanError::from_error(Field::Task, &error))?
            } else {
                task_request.labels.clone()
            };
            Ok::<_, PlanError>((dataset, labels))
        })
        .await
        .map_err(|error| {
            PlanError::new(Field::Dataset, format!("reading the dataset: {error}"))
        })??
    };
    let perturbed_field = match &request.task.perturb_field {
        Some(field) => {
            let field = field.trim().to_owned();
            if let Some(variant) = variants
                .iter()
                .find(|variant| !variant.template.fields().contains(&field.as_str()))
            {
                return Err(PlanError::new(
                    Field::Task,
                    format!(
                        "the perturbed field `{field}` is not a field of the template{}",
                        if variants.len() > 1 {
                            format!(" `{}`", variant.label)
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            field
        }
        None => variants[0]
            .template
            .fields()
            .first()
            .map_or_else(String::new, |field| (*field).to_owned()),
    };
    let task = TaskPlan {
        task: task_type,
        labels_given: request.task.labels.clone(),
        labels: classifies
            .then(|| fmeval_scoring::metrics::classification::ValidLabels::new(&raw_labels)),
        raw_labels,
        category_field: request.task.category_field.clone(),
        average: request.task.average,
        // fmeval perturbs the record's input (`model_input`) and fills the template with it:
        // here the field asked for, or the template's first.
        robustness: robust.then(|| {
            (
                request
                    .task
                    .perturbation
                    .unwrap_or(Perturbation::ButterFinger),
                perturbed_field.clone(),
            )
        }),
    };
    let mut plan = EvalPlan {
        name: request.name.trim().to_string(),
        estimated_cost_usd: None,
        dataset,
        variants,
        reference_field: request.reference_field.clone(),
        selection: request.selection,
        metrics,
        models: Vec::new(),
        judges: Vec::new(),
        rubric,
        config,
        params: request.params.clone(),
        task,
    };
    for (specs, field) in [(&models, Field::Models), (&judges, Field::Judges)] {
        for spec in specs {
            let provider = providers.get(spec).await.map_err(|error| {
                PlanError::new(
                    field,
                    format!("`{}`: {}", spec.spec, store::error_chain(&error)),
                )
            })?;
            let client = model_client(spec, provider, &request.params);
            match field {
                Field::Judges => plan.judges.push(client),
                _ => plan.models.push(client),
            }
        }
    }
    // The runner's own checks, once more, so a plan that passes here can always start.
    runner::validate(&plan).map_err(|error| PlanError::from_error(Field::Dataset, &error))?;
    Ok(plan)
}

/// Each model resolved once, in first-seen order (a model named twice is evaluated once).
fn resolve_models(
    catalog: &Catalog,
    specs: &[String],
    field: Field,
) -> Result<Vec<ModelSpec>, PlanError> {
    let mut resolved: Vec<ModelSpec> = Vec::with_capacity(specs.len());
    for spec in specs.iter().filter(|spec| !spec.trim().is_empty()) {
        let model = catalog
            .resolve(spec)
            .map_err(|error| PlanError::from_error(field, &error))?;
        if !resolved.iter().any(|seen| seen.spec == model.spec) {
            resolved.push(model);
        }
    }
    Ok(resolved)
}

fn unique_metrics(metrics: &[MetricName]) -> Vec<MetricName> {
    let mut unique = Vec::with_capacity(metrics.len());
    for metric in metrics {
        if !unique.contains(metric) {
            unique.push(*metric);
        }
    }
    unique
}

fn check_selection(selection: Selection) -> Result<(), PlanError> {
    match selection {
        Selection::First(0) => Err(PlanError::new(
            Field::Selection,
            "the record count must be at least 1",
        )),
        Selection::Sample { n: 0, .. } => Err(PlanError::new(
            Field::Selection,
            "the sample size must be at least 1",
        )),
        _ => Ok(()),
    }
}

/// A timeout or wait of the runner: more than zero, at most [`MAX_TIMEOUT`].
fn check_duration(value: Duration, what: &str) -> Result<(), PlanError> {
    if value.is_zero() || value > MAX_TIMEOUT {
        return Err(PlanError::new(
            Field::Runner,
            format!(
                "{what} must be more than 0 and at most {} seconds",
                MAX_TIMEOUT.as_secs()
            ),
        ));
    }
    Ok(())
}

fn runner_config(request: &EvalRequest) -> Result<RunnerConfig, PlanError> {
    if !(1..=MAX_CONCURRENCY).contains(&request.concurrency) {
        return Err(PlanError::new(
            Field::Runner,
            format!("concurrency must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    if !(1..=MAX_ATTEMPTS).contains(&request.max_attempts) {
        return Err(PlanError::new(
            Field::Runner,
            format!("attempts must be between 1 and {MAX_ATTEMPTS}"),
        ));
    }
    check_duration(request.timeout, "the timeout")?;
    check_duration(request.max_retry_wait, "the longest retry wait")?;
    check_duration(request.record_timeout, "the record timeout")?;
    Ok(RunnerConfig {
        concurrency: request.concurrency,
        max_attempts: request.max_attempts,
        timeout: request.timeout,
        max_retry_wait: request.max_retry_wait,
        record_timeout: request.record_timeout,
        ..RunnerConfig::default()
    })
}

fn check_params(params: &InferenceParams) -> Result<(), PlanError> {
    if let Some(temperature) = params.temperature
        && !(temperature.is_finite() && (0.0..=2.0).contains(&temperature))
    {
        return Err(PlanError::new(
            Field::Params,
            "the temperature must be between 0 and 2",
        ));
    }
    if let Some(top_p) = params.top_p
        && !(top_p.is_finite() && top_p > 0.0 && top_p <= 1.0)
    {
        return Err(PlanError::new(
            Field::Params,
            "top-p must be more than 0 and at most 1",
        ));
    }
    if params.max_tokens == Some(0) {
        return Err(PlanError::new(
            Field::Params,
            "the maximum number of tokens must be at least 1",
        ));
    }
    Ok(())
}

/// Template or rubric text as the user meant it: without a UTF-8 byte-order mark (which would
/// hide a role marker on the first line) and with CRLF line ends as LF (a file saved on
/// Windows, or a browser's textarea, must give the same prompt).
pub fn normalize_text(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.replace("\r\n", "\n")
}

/// Parses template text; a template that names no field would send every record the same
/// prompt, which is always a mistake.
pub fn parse_template(text: &str) -> Result<PromptTemplate, PlanError> {
    let source = normalize_text(text);
    if source.trim().is_empty() {
        return Err(PlanError::new(Field::Template, "the template is empty"));
    }
    let template = PromptTemplate::parse(&source)
        .map_err(|error| PlanError::from_error(Field::Template, &error))?;
    if template.fields().is_empty() {
        return Err(PlanError::new(
            Field::Template,
            "the template uses no field (write `{question}` where a record's field goes), so every record would get the same prompt",
        ));
    }
    Ok(template)
}

/// Parses each variant's template and gives every variant its label: the user's (one line,
/// at most [`MAX_VARIANT_LABEL_CHARS`], unique) or the next free letter. Errors name the
/// variant when there are several.
pub fn parse_variants(templates: &[TemplateRequest]) -> Result<Vec<Variant>, PlanError> {
    if templates.is_empty() {
        return Err(PlanError::new(Field::Template, "no prompt template"));
    }
    if templates.len() > MAX_VARIANTS {
        return Err(PlanError::new(
            Field::Template,
            format!(
                "{} prompt variants: at most {MAX_VARIANTS} are evaluated in one run",
                templates.len()
            ),
        ));
    }
    let several = templates.len() > 1;
    let mut variants: Vec<Variant> = Vec::with_capacity(templates.len());
    for (variant_idx, request) in templates.iter().enumerate() {
        let given = request.label.trim();
        let label = if given.is_empty() {
            // The first free letter from this variant's own position on.
            (variant_idx..)
                .map(default_label)
                .find(|label| {
                    !variants.iter().any(|variant| variant.label == *label)
                        && !templates.iter().any(|other| other.label.trim() == label)
                })
                .unwrap_or_else(|| default_label(variant_idx))
        } else {
            given.to_string()
        };
        let named = |message: String| {
            if several {
                PlanError::new(Field::Template, format!("variant {label}: {message}"))
            } else {
                PlanError::new(Field::Template, message)
            }
        };
        if label.chars().count() > MAX_VARIANT_LABEL_CHARS || label.contains(['\n', '\r']) {
            return Err(named(format!(
                "the label must be one line of at most {MAX_VARIANT_LABEL_CHARS} characters"
            )));
        }
        if variants.iter().any(|variant| variant.label == label) {
            return Err(named("two variants have this label".to_string()));
        }
        let template = parse_template(&request.text).map_err(|error| named(error.message))?;
        variants.push(Variant { label, template });
    }
    Ok(variants)
}

/// Opens the dataset and checks that every variant's template and the reference field fit it.
fn open_dataset(
    path: &Path,
    max_record: ByteSize,
    variants: &[Variant],
    reference_field: &str,
) -> Result<Dataset, PlanError> {
    let dataset = Dataset::open(path)
        .map_err(|error| PlanError::from_error(Field::Dataset, &error))?
        .with_max_record_size(max_record);
    let available = usable_fields(&dataset)?;
    for variant in variants {
        variant.template.check_fields(&available).map_err(|error| {
            let which = if variants.len() > 1 {
                format!("the template of variant {}", variant.label)
            } else {
                "the template".to_string()
            };
            PlanError::new(
                Field::Template,
                format!(
                    "{which} does not fit {}: {}",
                    display_name(path),
                    store::error_chain(&error)
                ),
            )
        })?;
    }
    if !available.iter().any(|field| field == reference_field) {
        return Err(PlanError::new(
            Field::ReferenceField,
            format!(
                "reference field `{reference_field}` is not in the dataset; available fields: {}",
                available.join(", ")
            ),
        ));
    }
    Ok(dataset)
}

/// A chosen category field must be a field of the dataset.
fn check_category_field(dataset: &Dataset, field: Option<&str>) -> Result<(), PlanError> {
    let Some(field) = field else {
        return Ok(());
    };
    let available = dataset
        .field_names()
        .map_err(|error| PlanError::from_error(Field::Dataset, &error))?;
    if available.iter().any(|name| name == field) {
        Ok(())
    } else {
        Err(PlanError::new(
            Field::Task,
            format!(
                "category field `{field}` is not in the dataset; available fields: {}",
                available.join(", ")
            ),
        ))
    }
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// The dataset's field names, after checking that it has records and that some of them are
/// usable: a file of nothing but broken lines is one problem to report once, not a run where
/// every record fails. A JSON array of objects (often saved as `.json`) is recognised and
/// named as such.
pub fn usable_fields(dataset: &Dataset) -> Result<Vec<String>, PlanError> {
    let path = dataset.path();
    let dataset_error = |error: crate::dataset::DatasetError| PlanError::from_dataset(&error);
    if dataset.format() == Format::JsonLines && is_json_array_of_objects(path) {
        return Err(PlanError::new(
            Field::Dataset,
            format!(
                "{}: this is one JSON array, not JSON Lines (one object per line); convert it, e.g. with `jq -c '.[]'`",
                path.display()
            ),
        ));
    }
    let Some(first) = dataset.records().map_err(dataset_error)?.next() else {
        return Err(PlanError::new(
            Field::Dataset,
            format!("{}: the dataset has no records", path.display()),
        ));
    };
    let available = dataset.field_names().map_err(dataset_error)?;
    if !available.is_empty() {
        return Ok(available);
    }
    let (problem, raise) = match first {
        Err(error) => (error.to_string(), PlanError::from_dataset(&error).raise),
        Ok(record) => (
            format!(
                "{}:{}: the record has no fields",
                path.display(),
                record.line
            ),
            None,
        ),
    };
    Err(PlanError {
        raise,
        ..PlanError::new(
            Field::Dataset,
            format!(
                "{}: no usable record among the first {}; the first problem: {problem}",
                path.display(),
                crate::dataset::FIELD_SCAN_RECORDS
            ),
        )
    })
}

/// Whether the file starts (after a byte-order mark and blanks) with `[` and then `{`: a JSON
/// array of objects, pretty-printed or on one line. (A JSON Lines file whose first line is an
/// array such as `[1, 2]` is not: that line fails alone.)
fn is_json_array_of_objects(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    if file.take(4096).read_to_end(&mut head).is_err() {
        return false;
    }
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    let mut significant = head.iter().filter(|byte| !byte.is_ascii_whitespace());
    significant.next() == Some(&b'[') && significant.next() == Some(&b'{')
}

/// The runner's client of a resolved model, with the request's parameters over the catalog's.
fn model_client(
    spec: &ModelSpec,
    provider: std::sync::Arc<dyn crate::providers::ModelProvider>,
    overrides: &InferenceParams,
) -> ModelClient {
    let mut params = spec.params.clone();
    // The service tier and latency are Bedrock's: other models of the run go without.
    if spec.provider == crate::catalog::ProviderKind::Bedrock {
        if overrides.service_tier.is_some() {
            params.service_tier = overrides.service_tier;
        }
        if overrides.latency.is_some() {
            params.latency = overrides.latency;
        }
    }
    // A tier's own price where the catalog has it; none (never the standard one) where not.
    let (price_per_1k_input, price_per_1k_output) = spec.prices(params.service_tier);
    if overrides.temperature.is_some() {
        params.temperature = overrides.temperature;
    }
    if overrides.max_tokens.is_some() {
        params.max_tokens = overrides.max_tokens;
    }
    if overrides.top_p.is_some() {
        params.top_p = overrides.top_p;
    }
    if !overrides.stop_sequences.is_empty() {
        params.stop_sequences = overrides.stop_sequences.clone();
    }
    ModelClient {
        label: spec.spec.clone(),
        provider,
        model_id: spec.model_id.clone(),
        params,
        price_per_1k_input,
        price_per_1k_output,
    }
}

impl EvalRequest {
    /// The request a run was made from, read back from its stored configuration
    /// ([`EvalPlan::config_json`]), to clone or resume it.
    pub fn from_config(config: &Value) -> Result<EvalRequest, PlanError> {
        let text = |key: &str, field: Field| -> Result<String, PlanError> {
            config
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| PlanError::new(field, format!("the stored run has no `{key}`")))
        };
        let list = |key: &str| -> Vec<String> {
            config
                .get(key)
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let metrics = list("metrics")
            .iter()
            .map(|name| {
                name.parse::<MetricName>().map_err(|error| {
                    PlanError::new(Field::Metrics, format!("stored metric `{name}`: {error}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let selection = match config.get("selection") {
            Some(selection) => {
                let count = |key| {
                    selection
                        .get(key)
                        .and_then(Value::as_u64)
                        .map(|n| n as usize)
                };
                match (count("records"), count("sample")) {
                    (Some(n), _) => Selection::First(n),
                    (None, Some(n)) => Selection::Sample {
                        n,
                        seed: selection
                            .get("seed")
                            .and_then(Value::as_u64)
                            .map_or(DEFAULT_SEED, |seed| seed as u32),
                    },
                    (None, None) => Selection::All,
                }
            }
            None => Selection::All,
        };
        let params: InferenceParams = config
            .get("params")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| PlanError::new(Field::Params, format!("stored parameters: {error}")))?
            .unwrap_or_default();
        let rubric = config
            .get("rubric")
            .and_then(Value::as_str)
            .filter(|rubric| *rubric != Rubric::default_rubric().source())
            .map(str::to_string);
        let seconds = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_f64)
                .filter(|secs| {
                    secs.is_finite() && *secs > 0.0 && *secs <= MAX_TIMEOUT.as_secs_f64()
                })
                .map(Duration::from_secs_f64)
        };
        let defaults = EvalRequest::new(PathBuf::new(), String::new(), Vec::new(), Vec::new());
        // A task that the metrics imply reads back as not given, as it was asked.
        let mut task = TaskRequest::from_config(config);
        if task.task == Some(task::infer_task(&metrics)) {
            task.task = None;
        }
        Ok(EvalRequest {
            name: config
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            dataset: PathBuf::from(text("dataset", Field::Dataset)?),
            templates: match config.get("variants").and_then(Value::as_array) {
                Some(variants) => variants
                    .iter()
                    .map(|variant| {
                        let field = |key: &str| {
                            variant
                                .get(key)
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .ok_or_else(|| {
                                    PlanError::new(
                                        Field::Template,
                                        format!("a stored variant has no `{key}`"),
                                    )
                                })
                        };
                        Ok(TemplateRequest {
                            label: field("label")?,
                            text: field("template")?,
                        })
                    })
                    .collect::<Result<Vec<_>, PlanError>>()?,
                None => vec![TemplateRequest::unlabeled(text(
                    "template",
                    Field::Template,
                )?)],
            },
            reference_field: text("reference_field", Field::ReferenceField)?,
            models: list("models"),
            metrics,
            judges: list("judges"),
            rubric,
            selection,
            params,
            concurrency: config
                .get("concurrency")
                .and_then(Value::as_u64)
                .map_or(defaults.concurrency, |n| n as usize),
            max_attempts: config
                .get("max_attempts")
                .and_then(Value::as_u64)
                .map_or(defaults.max_attempts, |n| n.min(u64::from(u32::MAX)) as u32),
            timeout: config
                .get("timeout_secs")
                .and_then(Value::as_f64)
                .filter(|secs| {
                    secs.is_finite() && *secs > 0.0 && *secs <= MAX_TIMEOUT.as_secs_f64()
                })
                .map_or(defaults.timeout, Duration::from_secs_f64),
            max_retry_wait: seconds("max_retry_wait_secs").unwrap_or(defaults.max_retry_wait),
            record_timeout: seconds("record_timeout_secs").unwrap_or(defaults.record_timeout),
            max_record_size: config
                .get("max_record_bytes")
                .and_then(Value::as_u64)
                .filter(|bytes| *bytes > 0)
                .map_or(defaults.max_record_size, ByteSize),
            max_prompt_size: config
                .get("max_prompt_bytes")
                .and_then(Value::as_u64)
                .filter(|bytes| *bytes > 0)
                .map_or(defaults.max_prompt_size, ByteSize),
            task,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(dir: &Path, template: &str) -> EvalRequest {
        let dataset = dir.join("d.jsonl");
        std::fs::write(&dataset, "{\"question\": \"Q?\", \"answers\": [\"A\"]}\n").unwrap();
        EvalRequest::new(
            dataset,
            template.to_string(),
            vec!["openai:m".to_string()],
            vec![MetricName::QaAccuracy],
        )
    }

    async fn check(change: impl FnOnce(&mut EvalRequest), expected: Result<(), (Field, &str)>) {
        let dir = tempfile::tempdir().unwrap();
        let mut request = request(dir.path(), "Q: {question}");
        change(&mut request);
        let providers = Providers::from_env(crate::providers::ProviderSettings {
            openai_base_url: Some("http://127.0.0.1:9/v1".into()),
            openai_api_key: Some(secrecy::SecretString::from("k".to_string())),
            ..Default::default()
        })
        .await
        .unwrap();
        let got = build_plan(&request, &Catalog::embedded(), &providers).await;
        match expected {
            Ok(()) => {
                got.unwrap();
            }
            Err((field, needle)) => {
                let error = got.unwrap_err();
                assert_eq!(error.field, field, "{error}");
                assert!(error.message.contains(needle), "{error}");
            }
        }
    }

    #[test]
    fn variants_get_the_next_free_letter_unless_labelled() {
        let templates: Vec<TemplateRequest> = [
            ("", "Q: {q}"),
            ("A", "{q}?"),
            ("", "{q}!"),
            ("short", "{q}."),
        ]
        .map(|(label, text)| TemplateRequest {
            label: label.into(),
            text: text.into(),
        })
        .to_vec();
        let labels: Vec<String> = parse_variants(&templates)
            .unwrap()
            .into_iter()
            .map(|variant| variant.label)
            .collect();
        assert_eq!(labels, ["B", "A", "C", "short"]);
        assert_eq!(default_label(25), "Z");
        assert_eq!(default_label(26), "V27");
    }

    #[tokio::test]
    async fn task_checks_name_their_field() {
        use fmeval_scoring::metrics::Task;
        check(
            |r| r.metrics = vec![MetricName::ClassificationAccuracy],
            Ok(()),
        )
        .await;
        check(
            |r| r.metrics = vec![MetricName::SummarizationAccuracy],
            Ok(()),
        )
        .await;
        check(
            |r| r.task.task = Some(Task::Summarization),
            Err((Field::Metrics, "not one of the summarization task's")),
        )
        .await;
        check(
            |r| r.task.labels = vec!["a".into()],
            Err((Field::Task, "only used by classification")),
        )
        .await;
        check(
            |r| {
                r.metrics = vec![MetricName::ClassificationAccuracy];
                r.task.labels = vec![" ".into()];
            },
            Err((Field::Task, "a label is empty")),
        )
        .await;
        check(
            |r| r.task.category_field = Some("topic".into()),
            Err((Field::Task, "category field `topic` is not in the dataset")),
        )
        .await;
        check(|r| r.task.category_field = Some("question".into()), Ok(())).await;
        check(
            |r| r.metrics = vec![MetricName::QaAccuracySemanticRobustness],
            Ok(()),
        )
        .await;
        check(
            |r| r.task.perturbation = Some(Perturbation::RandomUpperCase),
            Err((Field::Task, "only used by the semantic robustness metrics")),
        )
        .await;
        check(
            |r| r.task.perturb_field = Some("question".into()),
            Err((Field::Task, "only used by the semantic robustness metrics")),
        )
        .await;
        check(
            |r| {
                r.metrics = vec![MetricName::QaAccuracySemanticRobustness];
                r.task.perturb_field = Some("context".into());
            },
            Err((
                Field::Task,
                "the perturbed field `context` is not a field of the template",
            )),
        )
        .await;
        check(
            |r| r.params.latency = Some(crate::providers::Latency::Optimized),
            Err((Field::Params, "no model of this run is a Bedrock model")),
        )
        .await;
    }

    #[tokio::test]
    async fn default_labels_are_the_selected_targets() {
        let dir = tempfile::tempdir().unwrap();
        let dataset = dir.path().join("labels.jsonl");
        std::fs::write(
            &dataset,
            "{\"t\": \"x\", \"label\": \"b\"}\n{\"t\": \"y\", \"label\": \"a\"}\n{\"t\": \"z\", \"label\": \"b\"}\n{\"t\": \"w\", \"label\": \"c\"}\n",
        )
        .unwrap();
        let mut request = EvalRequest::new(
            dataset,
            "{t}".into(),
            vec!["openai:m".into()],
            vec![MetricName::ClassificationAccuracy],
        );
        request.reference_field = "label".into();
        request.selection = Selection::First(3);
        let providers = Providers::from_env(crate::providers::ProviderSettings {
            openai_base_url: Some("http://127.0.0.1:9/v1".into()),
            openai_api_key: Some(secrecy::SecretString::from("k".to_string())),
            ..Default::default()
        })
        .await
        .unwrap();
        let plan = build_plan(&request, &Catalog::embedded(), &providers)
            .await
            .unwrap();
        assert_eq!(plan.task.raw_labels, ["b", "a"]);
        let config = plan.config_json();
        assert_eq!(config["labels"], serde_json::json!(["b", "a"]));
        assert_eq!(config["task"], "classification");
        // Read back, the request is the same (the task followed from the metrics and the
        // labels were not given).
        let back = EvalRequest::from_config(&config).unwrap();
        assert_eq!(back.task, request.task);
    }

    #[tokio::test]
    async fn every_check_names_its_field_and_no_flag() {
        check(|_| {}, Ok(())).await;
        check(|r| r.models.clear(), Err((Field::Models, "no model"))).await;
        check(
            |r| r.models = vec!["nosuch".into()],
            Err((Field::Models, "nosuch")),
        )
        .await;
        check(|r| r.metrics.clear(), Err((Field::Metrics, "no metric"))).await;
        check(
            |r| r.metrics.push(MetricName::QaAccuracyByLlm),
            Err((Field::Judges, "needs at least one judge")),
        )
        .await;
        check(
            |r| r.judges = vec!["openai:j".into()],
            Err((Field::Judges, "only used by")),
        )
        .await;
        check(
            |r| r.templates[0].text = "no field".into(),
            Err((Field::Template, "uses no field")),
        )
        .await;
        check(
            |r| r.templates[0].text = "{nope}".into(),
            Err((Field::Template, "nope")),
        )
        .await;
        // Variants: each is checked and named; labels are unique, letters by default.
        let variant = |label: &str, text: &str| TemplateRequest {
            label: label.into(),
            text: text.into(),
        };
        check(
            |r| r.templates.push(variant("", "{nope}")),
            Err((Field::Template, "the template of variant B does not fit")),
        )
        .await;
        check(
            |r| r.templates.push(variant("", "no field")),
            Err((Field::Template, "variant B: the template uses no field")),
        )
        .await;
        check(
            |r| r.templates = vec![variant("x", "{question}"), variant(" x ", "Q {question}")],
            Err((Field::Template, "variant x: two variants have this label")),
        )
        .await;
        check(
            |r| r.templates = vec![variant("", "{question}"); MAX_VARIANTS + 1],
            Err((Field::Template, "at most 10")),
        )
        .await;
        check(
            |r| r.templates.push(variant(&"L".repeat(41), "{question}")),
            Err((Field::Template, "one line of at most 40")),
        )
        .await;
        check(
            |r| r.reference_field = "x".into(),
            Err((Field::ReferenceField, "available fields: question, answers")),
        )
        .await;
        check(
            |r| r.selection = Selection::First(0),
            Err((Field::Selection, "at least 1")),
        )
        .await;
        check(|r| r.concurrency = 0, Err((Field::Runner, "concurrency"))).await;
        check(
            |r| r.timeout = Duration::ZERO,
            Err((Field::Runner, "timeout")),
        )
        .await;
        check(
            |r| r.max_retry_wait = Duration::ZERO,
            Err((Field::Runner, "retry wait")),
        )
        .await;
        check(
            |r| r.record_timeout = MAX_TIMEOUT + Duration::from_secs(1),
            Err((Field::Runner, "record timeout")),
        )
        .await;
        // The record cap is the request's: a dataset whose records are all over it has none
        // usable.
        check(
            |r| r.max_record_size = ByteSize(8),
            Err((Field::Dataset, "the record is larger than 8 bytes")),
        )
        .await;
        check(
            |r| r.dataset = PathBuf::from("/dev/zero"),
            Err((Field::Dataset, "not a regular file")),
        )
        .await;
        check(
            |r| r.params.temperature = Some(3.0),
            Err((Field::Params, "temperature")),
        )
        .await;
        check(
            |r| r.rubric = Some("{nope}".into()),
            Err((Field::Rubric, "nope")),
        )
        .await;
        check(
            |r| r.dataset = PathBuf::from("/nonexistent/d.jsonl"),
            Err((Field::Dataset, "d.jsonl")),
        )
        .await;
    }

    #[tokio::test]
    async fn a_stored_configuration_reads_back_as_its_request() {
        let dir = tempfile::tempdir().unwrap();
        let mut request = request(dir.path(), "System: brief\nHuman: {question}\nAssistant:");
        request.selection = Selection::Sample { n: 1, seed: 7 };
        request.params.temperature = Some(0.5);
        request.concurrency = 3;
        request.timeout = Duration::from_millis(1500);
        request.max_retry_wait = Duration::from_secs(7);
        request.record_timeout = Duration::from_secs(90);
        let providers = Providers::from_env(crate::providers::ProviderSettings {
            openai_base_url: Some("http://127.0.0.1:9/v1".into()),
            openai_api_key: Some(secrecy::SecretString::from("k".to_string())),
            ..Default::default()
        })
        .await
        .unwrap();
        let plan = build_plan(&request, &Catalog::embedded(), &providers)
            .await
            .unwrap();
        assert_eq!(plan.models[0].params.temperature, Some(0.5));
        assert_eq!(
            EvalRequest::from_config(&plan.config_json()).unwrap(),
            request
        );
        // Named, with labelled variants: kept as they were given.
        request.name = "Two prompts".into();
        request.templates = vec![
            TemplateRequest {
                label: "plain".into(),
                text: "{question}".into(),
            },
            TemplateRequest {
                label: "B".into(),
                text: "Q: {question}\nA:".into(),
            },
        ];
        let plan = build_plan(&request, &Catalog::embedded(), &providers)
            .await
            .unwrap();
        assert_eq!(plan.columns().len(), 2);
        let config = plan.config_json();
        assert!(config.get("template").is_none(), "{config}");
        assert_eq!(EvalRequest::from_config(&config).unwrap(), request);
    }
}
