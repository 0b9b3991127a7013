//! The new-evaluation form: dataset and reference field, prompt template with a preview of
//! the first records (text and chat messages), models from the catalog (and SageMaker
//! endpoints listed live), inference parameters, metrics, judges and rubric, record count or
//! sample, runner settings.
//!
//! Invariants: the form is checked by the engine's own [`engine::plan::build_plan`], so it
//! refuses exactly what the CLI refuses, with the same words, shown next to the field they are
//! about; on any error the form comes back with everything the user typed; the last submitted
//! form is saved per user and fills the next one.

use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, JsonError};
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::AppState;
use engine::dataset::Dataset;
use engine::judge::Rubric;
use engine::limits::ByteSize;
use engine::plan::{EvalRequest, Field, TemplateRequest, build_plan};
use engine::providers::InferenceParams;
use engine::task::TaskRequest;
use fmeval_scoring::metrics::classification::Average;
use fmeval_scoring::metrics::{MetricName, Task};
use fmeval_scoring::sample::{DEFAULT_SEED, Selection};
use store::{DatasetRow, UserId};

/// Records shown in the template preview.
const PREVIEW_RECORDS: usize = 3;
/// How long listing SageMaker endpoints may take before the form is shown without them.
const ENDPOINTS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a listing of SageMaker endpoints is reused.
const ENDPOINTS_TTL: Duration = Duration::from_secs(60);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/evals/new", get(evals_new))
        .route("/evals", post(evals_create))
        .route("/evals/preview", post(evals_preview))
}

/// The form's values exactly as typed (numbers stay text, so nothing is lost on an error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalForm {
    pub name: String,
    pub dataset: String,
    pub reference_field: String,
    /// The first prompt variant's template and label.
    pub template: String,
    pub template_label: String,
    /// The other prompt variants, in order.
    pub variants: Vec<VariantForm>,
    pub models: Vec<String>,
    pub extra_models: String,
    pub metrics: Vec<String>,
    pub judges: Vec<String>,
    pub extra_judges: String,
    pub rubric: String,
    pub selection: String,
    pub count: String,
    pub seed: String,
    pub temperature: String,
    pub max_tokens: String,
    pub top_p: String,
    /// Bedrock's service tier (`default`, `flex`, `priority`; blank: each model's default).
    pub service_tier: String,
    /// Bedrock's latency (`standard`, `optimized`; blank: each model's default).
    pub latency: String,
    pub concurrency: String,
    pub max_attempts: String,
    pub timeout: String,
    pub max_retry_wait: String,
    pub record_timeout: String,
    pub max_record_size: String,
    /// The task type (`qa`, `classification`, `summarization`, `generation`).
    pub task: String,
    /// Classification labels, comma-separated (blank: the distinct targets).
    pub labels: String,
    /// The field to group scores by (blank: `category` when present).
    pub category_field: String,
    /// Classification's precision/recall average.
    pub average: String,
    /// The perturbation of the robustness metrics (blank: butter_finger).
    pub perturbation: String,
    /// The field the robustness metrics perturb (blank: the template's first).
    pub perturb_field: String,
    /// `online` or `batch` (Bedrock batch inference).
    #[serde(default)]
    pub mode: String,
    /// Batch mode: how the judges are asked, `batch` (blank: batch) or `online`.
    #[serde(default)]
    pub judge_mode: String,
}

/// A prompt variant of the form beyond the first: its label and template as typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VariantForm {
    pub label: String,
    pub template: String,
}

impl VariantForm {
    /// Neither a label nor a template: an added variant left blank, not evaluated.
    fn is_blank(&self) -> bool {
        self.label.trim().is_empty() && self.template.trim().is_empty()
    }
}

impl EvalForm {
    /// A fresh form: the workshop's template, the first metric, the CLI's defaults.
    fn defaults() -> EvalForm {
        let request = EvalRequest::new(Default::default(), String::new(), Vec::new(), Vec::new());
        EvalForm {
            reference_field: request.reference_field,
            template: "Human: {doc}\n\nAnswer briefly: {question}\n\nAssistant:".to_string(),
            metrics: vec!["qa_accuracy".to_string()],
            rubric: Rubric::default_rubric().source().to_string(),
            selection: "all".to_string(),
            count: "20".to_string(),
            seed: DEFAULT_SEED.to_string(),
            concurrency: request.concurrency.to_string(),
            max_attempts: request.max_attempts.to_string(),
            timeout: format!("{}", request.timeout.as_secs_f64()),
            max_retry_wait: format!("{}", request.max_retry_wait.as_secs_f64()),
            record_timeout: format!("{}", request.record_timeout.as_secs_f64()),
            max_record_size: request.max_record_size.to_string(),
            task: Task::Qa.as_str().to_string(),
            average: Average::Micro.as_str().to_string(),
            ..EvalForm::default()
        }
    }

    /// The form of an earlier run's request (clone).
    fn from_request(
        request: &EvalRequest,
        dataset_id: String,
        catalog_aliases: &[String],
    ) -> EvalForm {
        let split = |specs: &[String]| -> (Vec<String>, String) {
            let (listed, extra): (Vec<String>, Vec<String>) = specs
                .iter()
                .cloned()
                .partition(|spec| catalog_aliases.contains(spec));
            (listed, extra.join("\n"))
        };
        let (models, extra_models) = split(&request.models);
        let (judges, extra_judges) = split(&request.judges);
        let (selection, count, seed) = match request.selection {
            Selection::All => ("all", "20".to_string(), DEFAULT_SEED.to_string()),
            Selection::First(n) => ("first", n.to_string(), DEFAULT_SEED.to_string()),
            Selection::Sample { n, seed } => ("sample", n.to_string(), seed.to_string()),
        };
        let number = |value: Option<String>| value.unwrap_or_default();
        let mut templates = request.templates.iter();
        let first = templates.next();
        EvalForm {
            name: request.name.clone(),
            dataset: dataset_id,
            reference_field: request.reference_field.clone(),
            template: first.map(|first| first.text.clone()).unwrap_or_default(),
            // The default label of a lone template is not shown as a label the user chose.
            template_label: first
                .map(|first| first.label.clone())
                .filter(|label| {
                    request.templates.len() > 1 || label != engine::runner::DEFAULT_VARIANT
                })
                .unwrap_or_default(),
            variants: templates
                .map(|variant| VariantForm {
                    label: variant.label.clone(),
                    template: variant.text.clone(),
                })
                .collect(),
            models,
            extra_models,
            metrics: request
                .metrics
                .iter()
                .map(|metric| metric.as_str().to_string())
                .collect(),
            judges,
            extra_judges,
            rubric: request
                .rubric
                .clone()
                .unwrap_or_else(|| Rubric::default_rubric().source().to_string()),
            selection: selection.to_string(),
            count,
            seed,
            temperature: number(request.params.temperature.map(|v| v.to_string())),
            max_tokens: number(request.params.max_tokens.map(|v| v.to_string())),
            top_p: number(request.params.top_p.map(|v| v.to_string())),
            service_tier: request
                .params
                .service_tier
                .map(|tier| tier.as_str().to_string())
                .unwrap_or_default(),
            latency: request
                .params
                .latency
                .map(|latency| latency.as_str().to_string())
                .unwrap_or_default(),
            concurrency: request.concurrency.to_string(),
            max_attempts: request.max_attempts.to_string(),
            timeout: format!("{}", request.timeout.as_secs_f64()),
            max_retry_wait: format!("{}", request.max_retry_wait.as_secs_f64()),
            record_timeout: format!("{}", request.record_timeout.as_secs_f64()),
            max_record_size: request.max_record_size.to_string(),
            task: request
                .task
                .task
                .unwrap_or_else(|| engine::task::infer_task(&request.metrics))
                .as_str()
                .to_string(),
            labels: request.task.labels.join(", "),
            category_field: request.task.category_field.clone().unwrap_or_default(),
            average: request.task.average.as_str().to_string(),
            perturbation: request
                .task
                .perturbation
                .map(|perturbation| perturbation.as_str().to_string())
                .unwrap_or_default(),
            perturb_field: request.task.perturb_field.clone().unwrap_or_default(),
            // A clone starts online; batch mode is chosen again on the form.
            mode: String::new(),
            judge_mode: String::new(),
        }
    }

    /// The form of a URL-encoded body (repeated keys for the checkboxes).
    fn parse(body: &[u8]) -> EvalForm {
        let mut form = EvalForm::default();
        // Each variant's label input comes before its template in the page, the first
        // variant's first: the n-th label and the n-th template belong together.
        let mut templates: Vec<String> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            match name.as_ref() {
                "name" => form.name = value,
                "dataset" => form.dataset = value,
                "reference_field" => form.reference_field = value,
                "template" if templates.len() < engine::plan::MAX_VARIANTS + 1 => {
                    templates.push(value)
                }
                "variant_label" if labels.len() < engine::plan::MAX_VARIANTS + 1 => {
                    labels.push(value)
                }
                "models" => form.models.push(value),
                "extra_models" => form.extra_models = value,
                "metrics" => form.metrics.push(value),
                "judges" => form.judges.push(value),
                "extra_judges" => form.extra_judges = value,
                "rubric" => form.rubric = value,
                "selection" => form.selection = value,
                "count" => form.count = value,
                "seed" => form.seed = value,
                "temperature" => form.temperature = value,
                "max_tokens" => form.max_tokens = value,
                "top_p" => form.top_p = value,
                "service_tier" => form.service_tier = value,
                "latency" => form.latency = value,
                "concurrency" => form.concurrency = value,
                "max_attempts" => form.max_attempts = value,
                "timeout" => form.timeout = value,
                "max_retry_wait" => form.max_retry_wait = value,
                "record_timeout" => form.record_timeout = value,
                "max_record_size" => form.max_record_size = value,
                "task" => form.task = value,
                "labels" => form.labels = value,
                "category_field" => form.category_field = value,
                "average" => form.average = value,
                "perturbation" => form.perturbation = value,
                "perturb_field" => form.perturb_field = value,
                "mode" => form.mode = value,
                "judge_mode" => form.judge_mode = value,
                _ => {}
            }
        }
        labels.resize(templates.len().max(labels.len()), String::new());
        templates.resize(labels.len(), String::new());
        let mut pairs = labels.into_iter().zip(templates);
        if let Some((label, template)) = pairs.next() {
            form.template_label = label;
            form.template = template;
        }
        form.variants = pairs
            .map(|(label, template)| VariantForm { label, template })
            .collect();
        form
    }

    /// The request's templates: the first variant, then every other one not left blank.
    fn templates(&self) -> Vec<TemplateRequest> {
        std::iter::once(TemplateRequest {
            label: self.template_label.trim().to_string(),
            text: self.template.clone(),
        })
        .chain(
            self.variants
                .iter()
                .filter(|variant| !variant.is_blank())
                .map(|variant| TemplateRequest {
                    label: variant.label.trim().to_string(),
                    text: variant.template.clone(),
                }),
        )
        .collect()
    }

    /// The label a variant gets when run (its own, or the letter of its position), for the
    /// page's headings: `index` 0 is the first variant.
    pub fn variant_heading(&self, index: impl std::borrow::Borrow<usize>) -> String {
        let index = *index.borrow();
        let given = match index {
            0 => self.template_label.trim(),
            n => self
                .variants
                .get(n - 1)
                .map_or("", |variant| variant.label.trim()),
        };
        if given.is_empty() {
            engine::plan::default_label(index)
        } else {
            given.to_string()
        }
    }

    /// Whether a checkbox value is ticked.
    pub fn has_model(&self, alias: &str) -> bool {
        self.models.iter().any(|model| model == alias)
    }

    /// Whether a judge checkbox is ticked.
    pub fn has_judge(&self, alias: &str) -> bool {
        self.judges.iter().any(|judge| judge == alias)
    }

    /// Whether a metric checkbox is ticked.
    pub fn has_metric(&self, metric: &str) -> bool {
        self.metrics.iter().any(|name| name == metric)
    }

    /// The task types that offer `metric`, space-separated (the form's script shows a metric
    /// only under its task types).
    pub fn tasks_of(&self, metric: &str) -> String {
        Task::ALL
            .iter()
            .filter(|task| {
                task.metrics()
                    .iter()
                    .any(|offered| offered.as_str() == metric)
            })
            .map(|task| task.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The ticked and typed model specs.
    fn all_models(listed: &[String], extra: &str) -> Vec<String> {
        listed
            .iter()
            .cloned()
            .chain(
                extra
                    .lines()
                    .flat_map(|line| line.split(','))
                    .map(str::trim)
                    .filter(|spec| !spec.is_empty())
                    .map(str::to_string),
            )
            .collect()
    }
}

/// A form value that did not parse, or a request the engine refused, with its field.
#[derive(Debug, Clone)]
pub struct FormError {
    pub field: &'static str,
    pub message: String,
}

fn form_error(field: Field, message: impl Into<String>) -> FormError {
    FormError {
        field: field.as_str(),
        message: message.into(),
    }
}

/// A select's value: blank is `None`, anything else must parse.
fn choice<T: std::str::FromStr<Err = String>>(
    value: &str,
    field: Field,
) -> Result<Option<T>, FormError> {
    match value.trim() {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|error| form_error(field, error)),
    }
}

/// The request of a form; number fields that do not parse are errors of their field.
fn request_of(form: &EvalForm, dataset: Option<&DatasetRow>) -> Result<EvalRequest, FormError> {
    let dataset = dataset.ok_or_else(|| form_error(Field::Dataset, "choose a dataset"))?;
    let metrics = form
        .metrics
        .iter()
        .map(|name| {
            name.parse::<MetricName>()
                .map_err(|error| form_error(Field::Metrics, error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let optional = |text: &str, field: Field, what: &str| -> Result<Option<f64>, FormError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .map(Some)
            .ok_or_else(|| form_error(field, format!("{what} `{text}` is not a number")))
    };
    let whole = |text: &str, field: Field, what: &str| -> Result<Option<u64>, FormError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<u64>()
            .map(Some)
            .map_err(|_| form_error(field, format!("{what} `{text}` is not a whole number")))
    };
    let count = |what| -> Result<usize, FormError> {
        whole(&form.count, Field::Selection, what)?
            .map(|n| n as usize)
            .ok_or_else(|| form_error(Field::Selection, format!("give the {what}")))
    };
    let selection = match form.selection.as_str() {
        "first" => Selection::First(count("number of records")?),
        "sample" => Selection::Sample {
            n: count("sample size")?,
            seed: whole(&form.seed, Field::Selection, "seed")?.map_or(
                Ok(DEFAULT_SEED),
                |seed| {
                    u32::try_from(seed)
                        .map_err(|_| form_error(Field::Selection, "the seed is too large"))
                },
            )?,
        },
        _ => Selection::All,
    };
    let params = InferenceParams {
        temperature: optional(&form.temperature, Field::Params, "temperature")?.map(|v| v as f32),
        max_tokens: whole(&form.max_tokens, Field::Params, "maximum tokens")?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        top_p: optional(&form.top_p, Field::Params, "top-p")?.map(|v| v as f32),
        stop_sequences: Vec::new(),
        service_tier: choice(&form.service_tier, Field::Params)?,
        latency: choice(&form.latency, Field::Params)?,
    };
    let defaults = EvalRequest::new(Default::default(), String::new(), Vec::new(), Vec::new());
    let seconds = |value: &str, what: &str| -> Result<Option<Duration>, FormError> {
        let secs = optional(value, Field::Runner, what)?;
        if secs.is_some_and(|secs| secs <= 0.0 || secs > engine::plan::MAX_TIMEOUT.as_secs_f64()) {
            return Err(form_error(
                Field::Runner,
                format!(
                    "the {what} must be more than 0 and at most {} seconds",
                    engine::plan::MAX_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(secs.map(Duration::from_secs_f64))
    };
    let timeout = seconds(&form.timeout, "timeout")?;
    let max_retry_wait = seconds(&form.max_retry_wait, "longest wait before a retry")?;
    let record_timeout = seconds(&form.record_timeout, "time limit per record")?;
    let max_record_size = match form.max_record_size.trim() {
        "" => defaults.max_record_size,
        text => engine::limits::parse_size(text)
            .map_err(|why| form_error(Field::Runner, format!("largest record: {why}")))?,
    };
    let task = TaskRequest {
        task: match form.task.trim() {
            "" => None,
            text => Some(
                text.parse::<Task>()
                    .map_err(|error| form_error(Field::Task, error.to_string()))?,
            ),
        },
        labels: form
            .labels
            .split(',')
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_string)
            .collect(),
        category_field: Some(form.category_field.trim())
            .filter(|field| !field.is_empty())
            .map(str::to_string),
        average: match form.average.trim() {
            "" => Average::default(),
            text => text.parse().map_err(
                |error: fmeval_scoring::metrics::classification::UnknownAverage| {
                    form_error(Field::Task, error.to_string())
                },
            )?,
        },
        perturbation: match form.perturbation.trim() {
            "" => None,
            text => Some(text.parse().map_err(
                |error: fmeval_scoring::perturbation::UnknownPerturbation| {
                    form_error(Field::Task, error.to_string())
                },
            )?),
        },
        perturb_field: Some(form.perturb_field.trim())
            .filter(|field| !field.is_empty())
            .map(str::to_string),
    };
    let rubric = (form.rubric.trim() != Rubric::default_rubric().source().trim()
        && !form.rubric.trim().is_empty())
    .then(|| form.rubric.clone());
    Ok(EvalRequest {
        name: form.name.trim().to_string(),
        dataset: dataset.path.clone(),
        templates: form.templates(),
        reference_field: form.reference_field.trim().to_string(),
        models: EvalForm::all_models(&form.models, &form.extra_models),
        metrics,
        judges: EvalForm::all_models(&form.judges, &form.extra_judges),
        rubric,
        selection,
        params,
        concurrency: whole(&form.concurrency, Field::Runner, "concurrency")?
            .map_or(defaults.concurrency, |n| n.min(usize::MAX as u64) as usize),
        max_attempts: whole(&form.max_attempts, Field::Runner, "attempts")?
            .map_or(defaults.max_attempts, |n| n.min(u64::from(u32::MAX)) as u32),
        timeout: timeout.unwrap_or(defaults.timeout),
        max_retry_wait: max_retry_wait.unwrap_or(defaults.max_retry_wait),
        record_timeout: record_timeout.unwrap_or(defaults.record_timeout),
        max_record_size,
        max_prompt_size: defaults.max_prompt_size,
        task,
    })
}

/// One catalog model as the form lists it.
pub struct ModelOption {
    pub spec: String,
    pub label: String,
    pub provider: &'static str,
}

/// One rendered record of the preview.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewRecord {
    pub line: usize,
    pub text: String,
    pub messages: Vec<engine::chat::ChatMessage>,
}

#[derive(Template)]
#[template(path = "eval_new.html")]
struct EvalPage {
    layout: Layout,
    form: EvalForm,
    datasets: Vec<DatasetRow>,
    fields: Vec<String>,
    models: Vec<ModelOption>,
    endpoints: Result<Vec<String>, String>,
    metrics: Vec<(&'static str, &'static str)>,
    error: Option<FormError>,
    preview: Result<Vec<PreviewRecord>, String>,
    /// The previews of the other variants, in order.
    variant_previews: Vec<Result<Vec<PreviewRecord>, String>>,
    /// The cost estimate, when asked for (or why there is none).
    estimate: Option<Result<engine::estimate::Estimate, String>>,
    /// What this server allows each user (its quotas), shown under the Runner settings.
    quotas: String,
    mode: super::mode::ModeChoice,
}

impl EvalPage {
    /// The error of a field, if it is the one in error.
    pub fn error_of(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|error| error.field == field)
            .map(|error| error.message.as_str())
    }

    /// `aria-invalid` and `aria-describedby` of a field in error.
    pub fn invalid(&self, field: &str) -> String {
        if self.error_of(field).is_some() {
            format!("aria-invalid=\"true\" aria-describedby=\"{field}-error\"")
        } else {
            String::new()
        }
    }
}

fn metric_options() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "qa_accuracy",
            "QA accuracy (exact match, quasi-exact match, precision, recall, F1)",
        ),
        (
            "factual_knowledge",
            "Factual knowledge (a reference answer occurs in the output)",
        ),
        (
            "qa_accuracy_by_llm",
            "QA accuracy judged by LLM (needs judge models)",
        ),
        (
            "classification_accuracy",
            "Classification accuracy (label of the answer; accuracy, balanced accuracy, precision, recall, confusion matrix)",
        ),
        (
            "summarization_accuracy",
            "Summarization accuracy (ROUGE-1, ROUGE-2, ROUGE-L)",
        ),
        (
            "qa_accuracy_semantic_robustness",
            "QA accuracy semantic robustness (5 perturbed prompts per record, delta scores)",
        ),
        (
            "classification_accuracy_semantic_robustness",
            "Classification accuracy semantic robustness (5 perturbed prompts per record, delta score)",
        ),
    ]
}

fn model_options(state: &AppState) -> Vec<ModelOption> {
    state
        .catalog
        .entries()
        .iter()
        .map(|entry| ModelOption {
            spec: entry.alias.clone(),
            label: format!(
                "{} ({}:{})",
                entry.display_name,
                entry.provider.as_str(),
                entry.model_id
            ),
            provider: entry.provider.as_str(),
        })
        .collect()
}

/// SageMaker endpoints of the account and region, listed live (3 s at most, reused for a
/// minute); the error says why they are not listed.
async fn sagemaker_endpoints(state: &AppState) -> Result<Vec<String>, String> {
    type Listing = Result<Vec<String>, String>;
    static CACHE: std::sync::Mutex<Option<(Instant, Listing)>> = std::sync::Mutex::new(None);
    if let Some((at, listed)) = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
        && at.elapsed() < ENDPOINTS_TTL
    {
        return listed;
    }
    let listed = match tokio::time::timeout(
        ENDPOINTS_TIMEOUT,
        state.providers.list_sagemaker_endpoints(),
    )
    .await
    {
        Ok(Ok(endpoints)) => Ok(endpoints
            .into_iter()
            .filter(|endpoint| endpoint.status == "InService")
            .map(|endpoint| format!("sagemaker:{}", endpoint.name))
            .collect()),
        Ok(Err(error)) => {
            let detail = store::error_chain(&error);
            tracing::warn!(error = %detail, "listing SageMaker endpoints failed");
            Err(crate::safety::redact_aws_details(&detail))
        }
        Err(_) => Err(format!(
            "listing them took more than {} s",
            ENDPOINTS_TIMEOUT.as_secs()
        )),
    };
    *CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), listed.clone()));
    listed
}

/// The first records of `dataset` rendered with `template`.
fn render_preview(
    dataset: &DatasetRow,
    template: &str,
    limit: ByteSize,
) -> Result<Vec<PreviewRecord>, String> {
    let rename =
        |message: String| message.replace(&dataset.path.display().to_string(), &dataset.name);
    // Rendered within the server's limit: a template of thousands of placeholders fails
    // while it is filled, never after.
    let template = engine::plan::parse_template(template)
        .map_err(|error| error.message)?
        .with_max_rendered(limit);
    let file = Dataset::open(&dataset.path).map_err(|error| rename(error.to_string()))?;
    template
        .check_fields(&dataset.fields)
        .map_err(|error| rename(store::error_chain(&error)))?;
    let mut records = Vec::new();
    for item in file.records().map_err(|error| rename(error.to_string()))? {
        let Ok(record) = item else { continue };
        let rendered = template
            .render(&record)
            .map_err(|error| rename(store::error_chain(&error)))?;
        records.push(PreviewRecord {
            line: record.line,
            text: rendered.text,
            messages: rendered.messages,
        });
        if records.len() == PREVIEW_RECORDS {
            break;
        }
    }
    Ok(records)
}

async fn preview_of(
    dataset: Option<&DatasetRow>,
    template: &str,
    limit: ByteSize,
) -> Result<Vec<PreviewRecord>, String> {
    let Some(dataset) = dataset.cloned() else {
        return Err("Choose a dataset to see the preview.".to_string());
    };
    let template = template.to_string();
    tokio::task::spawn_blocking(move || render_preview(&dataset, &template, limit))
        .await
        .unwrap_or_else(|error| Err(error.to_string()))
}

async fn eval_page(
    state: &AppState,
    owner: &UserId,
    layout: Layout,
    form: EvalForm,
    error: Option<FormError>,
) -> Result<EvalPage, AppError> {
    let mut datasets = state.store.datasets(owner).await?;
    // Datasets shared with the user, used in place (`<owner>/<id>` in the form).
    for shared in super::teams::shared_datasets(state, owner).await? {
        datasets.push(store::DatasetRow {
            id: shared.form_value,
            name: format!("{} (shared by {})", shared.dataset.name, shared.owner_name),
            ..shared.dataset
        });
    }
    let selected = datasets.iter().find(|dataset| dataset.id == form.dataset);
    let fields = selected
        .map(|dataset| dataset.fields.clone())
        .unwrap_or_default();
    let preview = preview_of(selected, &form.template, state.config.max_prompt_size).await;
    let mut variant_previews = Vec::with_capacity(form.variants.len());
    for variant in &form.variants {
        variant_previews
            .push(preview_of(selected, &variant.template, state.config.max_prompt_size).await);
    }
    let n_selected = selected.map_or(0, |dataset| match form.selection.as_str() {
        "first" | "sample" => form
            .count
            .trim()
            .parse::<usize>()
            .map_or(dataset.n_records, |n| n.min(dataset.n_records)),
        _ => dataset.n_records,
    });
    let mode = super::mode::mode_choice(
        &state.catalog,
        selected,
        n_selected,
        form.template.len(),
        &form.models,
        state.runs.batch_enabled(),
    );
    Ok(EvalPage {
        mode,
        variant_previews,
        estimate: None,
        quotas: state.config.quotas.summary(),
        layout,
        fields,
        models: model_options(state),
        endpoints: sagemaker_endpoints(state).await,
        metrics: metric_options(),
        preview,
        error,
        datasets,
        form,
    })
}

#[derive(Deserialize)]
struct NewParams {
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    from: Option<String>,
    /// The owner of the run in `from`, when it is another user's (shared, or a facilitator's
    /// view): the clone is the user's own evaluation.
    #[serde(default)]
    owner: Option<String>,
}

async fn evals_new(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Query(params): Query<NewParams>,
) -> Result<Html<EvalPage>, AppError> {
    let datasets = state.store.datasets(&user.id).await?;
    let aliases: Vec<String> = state
        .catalog
        .entries()
        .iter()
        .map(|entry| entry.alias.clone())
        .collect();
    let mut form = match &params.from {
        Some(run_id) => {
            let owner = super::runs::owner_of(&user, params.owner.as_deref())?;
            let (run, _) = super::runs::read_run(&state, &user, &owner, run_id).await?;
            let request = EvalRequest::from_config(&run.config).map_err(|error| {
                AppError::BadRequest(format!("This run cannot be cloned: {error}"))
            })?;
            let mut dataset_id = datasets
                .iter()
                .find(|dataset| dataset.path == request.dataset)
                .map(|dataset| dataset.id.clone())
                .unwrap_or_default();
            // Another user's run: its dataset, when that is shared with the user too.
            if dataset_id.is_empty()
                && owner != user.id
                && let Some(stem) = request.dataset.file_stem().and_then(|stem| stem.to_str())
                && store::readable_dataset(state.store.as_ref(), &user.id, &owner, stem)
                    .await?
                    .is_some()
            {
                dataset_id = super::teams::shared_dataset_value(&owner, stem);
            }
            let mut form = EvalForm::from_request(&request, dataset_id, &aliases);
            // The clone is a new run: named after the one it came from (as renamed since).
            form.name = match run.name.trim() {
                "" => String::new(),
                name => clone_name(name),
            };
            form
        }
        None => match state.store.settings(&user.id).await? {
            Some(saved) => serde_json::from_value(saved).unwrap_or_else(|_| EvalForm::defaults()),
            None => EvalForm::defaults(),
        },
    };
    if let Some(dataset) = params.dataset {
        form.dataset = dataset;
    }
    if form.dataset.is_empty()
        && let Some(first) = datasets.first()
    {
        form.dataset = first.id.clone();
    }
    Ok(Html(eval_page(&state, &user.id, layout, form, None).await?))
}

async fn evals_create(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    body: Bytes,
) -> Result<Response, AppError> {
    let mut form = EvalForm::parse(&body);
    let action = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "action")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    // Adding or removing a prompt variant re-renders the form with everything typed kept.
    let edits_variants = match action.as_str() {
        "add_variant" => {
            if form.variants.len() + 1 < engine::plan::MAX_VARIANTS {
                form.variants.push(VariantForm::default());
            }
            true
        }
        remove => match remove
            .strip_prefix("remove_variant_")
            .map(str::parse::<usize>)
        {
            Some(Ok(index)) => {
                if index < form.variants.len() {
                    form.variants.remove(index);
                }
                true
            }
            _ => false,
        },
    };
    let wants_preview = action == "preview" || edits_variants;
    // What the user typed is kept whatever happens next.
    state
        .store
        .save_settings(&user.id, &serde_json::to_value(&form).unwrap_or_default())
        .await?;
    let refused = |error: FormError,
                   state: AppState,
                   user: CurrentUser,
                   layout: Layout,
                   form: EvalForm| async move {
        let page = eval_page(&state, &user.id, layout, form, Some(error)).await?;
        Ok::<Response, AppError>((StatusCode::BAD_REQUEST, Html(page)).into_response())
    };
    if wants_preview {
        let page = eval_page(&state, &user.id, layout, form, None).await?;
        return Ok(Html(page).into_response());
    }
    let wants_estimate = action == "estimate";
    let dataset = super::teams::form_dataset(&state, &user, &form.dataset).await?;
    let request = match request_of(&form, dataset.as_ref()) {
        Ok(request) => request,
        Err(error) => return refused(error, state, user, layout, form).await,
    };
    if let Some(dataset) = &dataset {
        let n_selected = match request.selection {
            Selection::All => dataset.n_records,
            Selection::First(n) | Selection::Sample { n, .. } => n.min(dataset.n_records),
        };
        if n_selected > state.config.max_run_records {
            let error = form_error(
                Field::Selection,
                format!(
                    "this server evaluates at most {} records per run; choose the first N records or a sample",
                    state.config.max_run_records
                ),
            );
            return refused(error, state, user, layout, form).await;
        }
    }
    let request = crate::safety::within_server_limits(&state, request);
    if let Err((field, message)) =
        crate::safety::check_run_quota(&state, &user.id, &request).await?
    {
        return refused(form_error(field, message), state, user, layout, form).await;
    }
    let plan = match build_plan(&request, &state.catalog, &state.providers).await {
        Ok(plan) => plan,
        Err(error) => {
            let message = match &dataset {
                Some(dataset) => error
                    .message
                    .replace(&dataset.path.display().to_string(), &dataset.name),
                None => error.message.clone(),
            };
            let message = match error.raise {
                Some(engine::plan::Limit::MaxRecordSize) => {
                    format!("{message} (raise \u{201c}Largest dataset record\u{201d} under Runner)")
                }
                None => message,
            };
            return refused(form_error(error.field, message), state, user, layout, form).await;
        }
    };
    // The cost, estimated before anything is called: shown on request, kept with the run.
    let plan = std::sync::Arc::new(plan);
    let estimate = {
        let plan = plan.clone();
        match tokio::task::spawn_blocking(move || engine::estimate::estimate(&plan)).await {
            Ok(Ok(estimate)) => Ok(estimate),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        }
    };
    if wants_estimate {
        let mut page = eval_page(&state, &user.id, layout, form, None).await?;
        page.estimate = Some(estimate);
        return Ok(Html(page).into_response());
    }
    let mut plan = std::sync::Arc::unwrap_or_clone(plan);
    plan.estimated_cost_usd = estimate.ok().and_then(|estimate| estimate.total_usd);
    let run_id = store::new_run_id();
    let started = if form.mode == "batch" {
        let judge_mode = if form.judge_mode == "online" {
            engine::batch::JudgeMode::Online
        } else {
            engine::batch::JudgeMode::Batch
        };
        state
            .runs
            .start_batch(
                state.store.clone(),
                user.id.clone(),
                run_id.clone(),
                std::sync::Arc::new(plan),
                crate::registry::BatchStart {
                    judge_mode,
                    retry: None,
                },
            )
            .await
    } else {
        state
            .runs
            .start(
                state.store.clone(),
                state.cache.clone(),
                user.id.clone(),
                run_id.clone(),
                std::sync::Arc::new(plan),
                None,
            )
            .await
    };
    if let Err(error) = started {
        return refused(
            form_error(Field::Dataset, error.to_string()),
            state,
            user,
            layout,
            form,
        )
        .await;
    }
    Ok(Redirect::to(&format!("/runs/{run_id}")).into_response())
}

#[derive(Deserialize)]
struct PreviewRequest {
    dataset: String,
    template: String,
}

/// The template preview as JSON, for the form's live preview.
async fn evals_preview(
    State(state): State<AppState>,
    user: CurrentUser,
    axum::Json(request): axum::Json<PreviewRequest>,
) -> Result<axum::Json<serde_json::Value>, JsonError> {
    let dataset = super::teams::form_dataset(&state, &user, &request.dataset).await?;
    let preview = preview_of(
        dataset.as_ref(),
        &request.template,
        state.config.max_prompt_size,
    )
    .await;
    Ok(axum::Json(match preview {
        Ok(records) => serde_json::json!({"records": records}),
        Err(error) => serde_json::json!({"error": error}),
    }))
}

/// The name of a clone of the run named `name`: "<name> (copy)", within the name limit.
fn clone_name(name: &str) -> String {
    const SUFFIX: &str = " (copy)";
    let keep = store::MAX_RUN_NAME_CHARS - SUFFIX.len();
    let mut clone: String = name.chars().take(keep).collect();
    clone.push_str(SUFFIX);
    clone
}
