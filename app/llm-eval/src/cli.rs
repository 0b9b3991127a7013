//! The command line: `llm-eval eval | preview | serve | healthcheck | models`, parsed with clap,
//! then resolved into a runner plan. A thin layer over [`engine::runner`], [`store`] and
//! [`engine::output`].
//!
//! Exit codes: 0 success, 1 a `--fail-under` threshold was missed or every record of a model
//! failed (`healthcheck`: unhealthy), 2 usage or configuration
//! errors (bad flags, unknown template field, missing reference field, unknown model) and other
//! errors, 130 cancelled by Ctrl-C / SIGTERM. Invariant: every configuration check happens
//! before the first model call.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use engine::batch::RunMode;
use engine::cache::{ResponseCache, default_cache_dir};
use engine::catalog::Catalog;
use engine::dataset::Dataset;
use engine::output::{self, Threshold};
use engine::plan::{self, EvalRequest};
use engine::progress::{Progress, ProgressEvent};
use engine::providers::{ProviderSettings, Providers};
use engine::runner::{self, PriorAnswer, PriorResults, RunContext};
use engine::template::PromptTemplate;
use fmeval_scoring::metrics::classification::Average;
use fmeval_scoring::metrics::{MetricName, Task};
use fmeval_scoring::perturbation::Perturbation;
use fmeval_scoring::sample::{DEFAULT_SEED, Selection};
use store::{RunStatus, SharedStore, StoreSpec, UserId, default_store_path};

/// `llm-eval`: evaluate LLMs on a dataset from the command line, or serve the web app.
#[derive(Debug, Parser)]
#[command(name = "llm-eval", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate models on a dataset and write the results.
    Eval(Box<EvalArgs>),
    /// Render the prompt of the first record (no model call).
    Preview(PreviewArgs),
    /// Run the web app.
    Serve(ServeArgs),
    /// Check that a running web app answers `GET /healthz` (the container health check).
    Healthcheck(HealthcheckArgs),
    /// List the model catalog, or the SageMaker endpoints of the account and region.
    Models(ModelsArgs),
    /// Follow a run: `runs watch RUN` finishes a batch run.
    Runs(crate::batch_cli::RunsArgs),
}

/// Flags of `llm-eval eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run's name, shown in the history and the exports (at most 200 characters).
    #[arg(long)]
    pub name: Option<String>,
    /// The dataset (JSON Lines or CSV). With --retry-failed: the earlier run's, unless given.
    #[arg(long, required_unless_present = "retry_failed")]
    pub dataset: Option<PathBuf>,
    /// The prompt template: a file, or the template text itself. Repeat to compare prompt
    /// variants side by side on the same records (labelled A, B, C ...).
    #[arg(
        long = "template",
        required_unless_present_any = ["retry_failed", "templates_file"],
        conflicts_with = "templates_file"
    )]
    pub templates: Vec<String>,
    /// A TOML file of labelled prompt variants: `[[variant]]` tables with `label` and
    /// `template` (at most 10).
    #[arg(long = "templates", value_name = "FILE")]
    pub templates_file: Option<PathBuf>,
    /// A model (`provider:model-id` or a catalog alias); repeat to compare models.
    #[arg(long = "model", required_unless_present = "retry_failed")]
    pub models: Vec<String>,
    /// A metric: qa_accuracy, factual_knowledge, qa_accuracy_by_llm, classification_accuracy,
    /// summarization_accuracy, qa_accuracy_semantic_robustness,
    /// classification_accuracy_semantic_robustness; repeatable [default with --task: the
    /// task's first metric].
    #[arg(long = "metric", required_unless_present_any = ["retry_failed", "task"], num_args = 1..)]
    pub metrics: Vec<MetricName>,
    /// The task type: qa, classification, summarization or generation [default: the one the
    /// metrics belong to].
    #[arg(long)]
    pub task: Option<Task>,
    /// Classification labels, comma-separated [default: the distinct targets of the selected
    /// records, as fmeval takes them].
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub labels: Vec<String>,
    /// The field whose values group the scores (per-category means; a record without it
    /// counts as `(none)`) [default: `category` when the dataset has it].
    #[arg(long)]
    pub category_field: Option<String>,
    /// The average of classification's precision_score and recall_score: micro, macro or
    /// weighted [default: micro].
    #[arg(long)]
    pub average: Option<Average>,
    /// The perturbation of the semantic robustness metrics: butter_finger, random_upper_case or
    /// whitespace_add_remove [default: butter_finger]; five perturbed prompts per record.
    #[arg(long)]
    pub perturbation: Option<Perturbation>,
    /// The template field the semantic robustness metrics perturb [default: the template's
    /// first field].
    #[arg(long, value_name = "FIELD")]
    pub perturb_field: Option<String>,
    /// The field holding the reference answer(s) [default: answers].
    #[arg(long)]
    pub reference_field: Option<String>,
    /// A judge model for qa_accuracy_by_llm; repeatable (score = mean over judges).
    #[arg(long = "judge", num_args = 1..)]
    pub judges: Vec<String>,
    /// The judge rubric file (placeholders {question}, {model_answer}, {reference}).
    #[arg(long)]
    pub rubric: Option<PathBuf>,
    /// Evaluate only the first N records (N ≥ 1).
    #[arg(long, conflicts_with = "sample", value_parser = positive_count)]
    pub records: Option<usize>,
    /// Evaluate a random sample of N records (N ≥ 1), as fmeval draws it (shuffled order).
    #[arg(long, value_parser = positive_count)]
    pub sample: Option<usize>,
    /// The sampling seed [default: 1234].
    #[arg(long, requires = "sample")]
    pub seed: Option<u32>,
    /// Sampling temperature for every model (default: the catalog's).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Most tokens each answer may have (default: the catalog's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: Option<u32>,
    /// Nucleus sampling mass for every model (default: the catalog's).
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Amazon Bedrock's processing tier for the run's Bedrock models (online calls):
    /// `default`, `flex` (cheaper, slower when Bedrock is busy: made for evaluations) or
    /// `priority` (default: the catalog's, else Bedrock's standard tier).
    #[arg(long, value_name = "default|flex|priority")]
    pub service_tier: Option<engine::providers::ServiceTier>,
    /// Amazon Bedrock's `performanceConfig.latency` for the run's Bedrock models: `standard` or
    /// `optimized` (the latency-optimized version of a model, where Bedrock has one).
    #[arg(long, value_name = "standard|optimized")]
    pub latency: Option<engine::providers::Latency>,
    /// Concurrent requests per model [default: 8].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,
    /// Per-request timeout in seconds, at most a day [default: 60].
    #[arg(long, value_parser = timeout_seconds)]
    pub timeout: Option<f64>,
    /// Attempts per request, throttled ones (HTTP 429) included [default: 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: Option<u32>,
    /// The longest wait in seconds before a retry, whatever an endpoint's Retry-After asks
    /// [default: 60].
    #[arg(long, value_parser = timeout_seconds)]
    pub max_retry_wait: Option<f64>,
    /// The longest one record may take with one model, in seconds, every attempt and wait
    /// included (each judge call gets the same bound) [default: 600].
    #[arg(long, value_parser = timeout_seconds)]
    pub record_timeout: Option<f64>,
    /// The largest model reply accepted (e.g. 4MiB, 500K); a larger one fails its record.
    #[arg(long, value_name = "SIZE", default_value_t = engine::limits::DEFAULT_MAX_RESPONSE, value_parser = engine::limits::parse_size)]
    pub max_response_size: engine::limits::ByteSize,
    /// Output directory (default ./eval-results/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite the results already in --out (without it such an --out is refused).
    #[arg(long)]
    pub replace: bool,
    /// Size limits of the inputs.
    #[command(flatten)]
    pub limits: InputLimits,
    /// Exit 1 when a model's mean is below VALUE, or it has no scored record (METRIC is a
    /// score name, or a metric meaning its first score); repeatable.
    #[arg(long = "fail-under", value_name = "METRIC=VALUE")]
    pub fail_under: Vec<Threshold>,
    /// Do not read or write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The response cache directory.
    #[arg(long, env = "LLM_EVAL_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The run store: a SQLite file, or `dynamodb:TABLE` (the deployed app's table, with the
    /// bucket from DATA_BUCKET) so that the run appears in the team's app.
    #[arg(long, env = "LLM_EVAL_STORE")]
    pub store: Option<String>,
    /// Re-run only the records that failed (or are missing) in an earlier run: a run id in the
    /// store or the --out directory of that run. The dataset, template, models, metrics and
    /// parameters are the earlier run's unless given again. Earlier answers to the same
    /// prompt and reference are reused and scored with this run's metrics. A batch run's
    /// retry is a batch run (its failed records as new jobs; online below 100 a model).
    #[arg(long, value_name = "RUN")]
    pub retry_failed: Option<String>,
    /// A model catalog file (TOML) overriding or extending the built-in one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// The Secrets Manager secret holding the OpenAI API key, read when `OPENAI_API_KEY` is
    /// not set (the deployed app gets its name from the stack).
    #[arg(long, env = "OPENAI_SECRET_NAME")]
    pub openai_secret_name: Option<String>,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Batch mode (Amazon Bedrock batch inference).
    #[command(flatten)]
    pub batch: crate::batch_cli::BatchArgs,
}

/// Flags of `llm-eval preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The dataset (JSON Lines or CSV).
    #[arg(long)]
    pub dataset: PathBuf,
    /// The prompt template: a file, or the template text itself.
    #[arg(long)]
    pub template: String,
    /// Size limits of the inputs.
    #[command(flatten)]
    pub limits: InputLimits,
}

/// The size limits of what `eval` and `preview` read.
#[derive(Debug, Clone, Copy, Args)]
pub struct InputLimits {
    /// The largest dataset record (a JSONL line or a CSV row, e.g. 64MiB); a larger one fails.
    #[arg(long, value_name = "SIZE", default_value_t = engine::limits::DEFAULT_MAX_RECORD, value_parser = engine::limits::parse_size)]
    pub max_record_size: engine::limits::ByteSize,
    /// The largest template or rubric file.
    #[arg(long, value_name = "SIZE", default_value_t = engine::limits::DEFAULT_MAX_TEMPLATE, value_parser = engine::limits::parse_size)]
    pub max_template_size: engine::limits::ByteSize,
    /// The largest rendered prompt or judge prompt (checked while it is filled, e.g. 4MiB).
    #[arg(long, value_name = "SIZE", env = "LLM_EVAL_MAX_PROMPT_SIZE", default_value_t = engine::limits::DEFAULT_MAX_PROMPT, value_parser = engine::limits::parse_size)]
    pub max_prompt_size: engine::limits::ByteSize,
}

/// Flags of `llm-eval serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (local mode: a loopback address, plain HTTP).
    #[arg(long, default_value = "127.0.0.1:8080", env = "LLM_EVAL_BIND")]
    pub addr: SocketAddr,
    /// The data directory: the store, uploaded datasets and the response cache (default: the
    /// platform data directory, shared with `llm-eval eval`).
    #[arg(long, env = "LLM_EVAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A model catalog file (TOML) overriding or extending the built-in one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// The Secrets Manager secret holding the OpenAI API key, read when `OPENAI_API_KEY` is
    /// not set.
    #[arg(long, env = "OPENAI_SECRET_NAME")]
    pub openai_secret_name: Option<String>,
    /// The largest dataset upload, in MiB.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_upload_mib: u32,
    /// Do not read or write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The store: a SQLite file (default: `store.sqlite` in the data directory) or
    /// `dynamodb:TABLE` (several app tasks share it; the bucket comes from DATA_BUCKET).
    #[arg(long, env = "LLM_EVAL_STORE")]
    pub store: Option<String>,
    /// With a shared (DynamoDB) store, how long a run's lease lasts without renewal: a task
    /// that dies mid-run has its runs resumed by another task about this long after.
    #[arg(long, env = "LLM_EVAL_LEASE_SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_secs: Option<u64>,
}

/// Flags of `llm-eval models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// A model catalog file (TOML) overriding or extending the built-in one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// List the SageMaker endpoints (`sagemaker:NAME`) of the account and region instead.
    #[arg(long)]
    pub sagemaker_endpoints: bool,
}

/// Flags of `llm-eval healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The address the app listens on (an unspecified address such as 0.0.0.0 is checked
    /// through the loopback address).
    #[arg(long, default_value = "127.0.0.1:8080", env = "LLM_EVAL_BIND")]
    pub addr: SocketAddr,
    /// Seconds to wait for the answer (at most a day).
    #[arg(long, default_value_t = 3.0, value_parser = timeout_seconds)]
    pub timeout: f64,
}

/// How the process should exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything went well.
    Success,
    /// A `--fail-under` threshold was missed, or every record of a model failed.
    BelowThreshold,
    /// The run was cancelled.
    Cancelled,
    /// `healthcheck`: the app did not answer `GET /healthz` with 200.
    Unhealthy,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::BelowThreshold | Exit::Unhealthy => 1,
            Exit::Cancelled => 130,
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Eval(args) => eval(*args).await,
        Command::Preview(args) => preview(&args).map(|()| Exit::Success),
        Command::Serve(args) => serve(&args).await.map(|()| Exit::Success),
        Command::Healthcheck(args) => healthcheck(&args).await,
        Command::Models(args) => models(&args).await.map(|()| Exit::Success),
        Command::Runs(args) => match &args.command {
            crate::batch_cli::RunsCommand::Watch(args) => crate::batch_cli::watch(args).await,
        },
    }
}

/// The longest `--timeout`: a day. Longer is surely a typo, and a huge number of seconds
/// cannot be a `Duration` at all (converting it would panic).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// A `--timeout` in seconds: a positive number up to [`MAX_TIMEOUT_SECS`].
fn timeout_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_TIMEOUT_SECS) {
        return Err(format!(
            "must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds"
        ));
    }
    Ok(seconds)
}

/// A record count of `--records` / `--sample`: a whole number of at least 1 (0 would evaluate
/// nothing and let a `--fail-under` gate pass on no evidence).
fn positive_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// A template given as a file path or as the text itself, parsed by the engine's
/// [`plan::parse_template`] (which also drops a byte-order mark and turns CRLF into LF). A
/// template file is read up to `--max-template-size`. A template that names no field is nearly
/// always a file path with a typo (which would otherwise be sent as the prompt), and is
/// reported as such.
fn load_template(template: &str, limits: InputLimits) -> anyhow::Result<PromptTemplate> {
    let path = Path::new(template);
    let is_file = !template.contains('\n') && path.is_file();
    let source = if is_file {
        read_capped_text(path, limits).context("reading the template")?
    } else {
        template.to_string()
    };
    match plan::parse_template(&source) {
        Ok(parsed) => Ok(parsed),
        Err(error) if is_file => bail!("template {}: {error}", path.display()),
        Err(error) if looks_like_path(template) && !source.contains('{') => {
            bail!("--template `{template}`: no such file (as template text: {error})")
        }
        Err(error) => bail!("--template: {error}"),
    }
}

/// The cost estimate as one line for the terminal.
fn estimate_line(estimate: &engine::estimate::Estimate) -> String {
    let input: u64 = estimate
        .columns
        .iter()
        .map(|column| column.input_tokens)
        .sum();
    let cost = match estimate.total_usd {
        Some(usd) => format!("cost at most ${usd:.4}"),
        None => "cost unknown (no catalog prices)".to_string(),
    };
    let unpriced = match estimate.n_unpriced {
        0 => String::new(),
        n => format!(", {n} variant-model pair(s) without prices left out"),
    };
    format!(
        "estimate: {} model calls, about {input} input tokens, {cost}{unpriced} (tokens estimated as characters / 4, answers at most their maximum tokens; judges not included)",
        estimate.n_calls
    )
}

/// The `[[variant]]` tables of a `--templates` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantsFile {
    variant: Vec<VariantEntry>,
}

/// One `[[variant]]` of a `--templates` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantEntry {
    #[serde(default)]
    label: String,
    template: String,
}

/// Reads a `--templates` file (at most `--max-template-size` bytes): labelled variants, each
/// template checked like `--template`'s, errors naming the file and the variant.
fn load_variants_file(
    path: &Path,
    limits: InputLimits,
) -> anyhow::Result<Vec<plan::TemplateRequest>> {
    let text = read_capped_text(path, limits)
        .with_context(|| format!("--templates: reading {}", path.display()))?;
    let file: VariantsFile = toml::from_str(&text)
        .map_err(|error| anyhow::anyhow!("--templates {}: {error}", path.display()))?;
    if file.variant.is_empty() {
        bail!("--templates {}: no [[variant]] table", path.display());
    }
    Ok(file
        .variant
        .into_iter()
        .map(|entry| plan::TemplateRequest {
            label: entry.label,
            text: entry.template,
        })
        .collect())
}

/// A template or rubric file as text, at most `--max-template-size` bytes (an endless file such
/// as `/dev/zero` fails after reading one byte more).
fn read_capped_text(path: &Path, limits: InputLimits) -> anyhow::Result<String> {
    Ok(engine::limits::read_text_capped(
        path,
        limits.max_template_size,
        "--max-template-size",
    )?)
}

/// Whether template text looks like a file name: one word with a path separator or an
/// extension.
fn looks_like_path(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty()
        && !text.chars().any(char::is_whitespace)
        && (text.contains('/') || text.contains('\\') || Path::new(text).extension().is_some())
}

fn preview(args: &PreviewArgs) -> anyhow::Result<()> {
    let dataset = Dataset::open(&args.dataset)?.with_max_record_size(args.limits.max_record_size);
    let template =
        load_template(&args.template, args.limits)?.with_max_rendered(args.limits.max_prompt_size);
    let available = plan::usable_fields(&dataset)
        .map_err(|error| anyhow::anyhow!("{}", cli_message(&error)))?;
    template
        .check_fields(&available)
        .with_context(|| format!("template does not fit {}", args.dataset.display()))?;
    let Some(first) = dataset.records()?.next() else {
        bail!("{}: the dataset has no records", args.dataset.display());
    };
    let rendered = template.render(&first?)?;
    println!("{}", rendered.text);
    println!();
    println!("{}", serde_json::to_string_pretty(&rendered.messages)?);
    Ok(())
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let options = web::serve::ServeOptions {
        addr: args.addr,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(store::default_data_dir),
        catalog: args.catalog.clone(),
        openai_secret_name: args.openai_secret_name.clone(),
        max_upload_mib: args.max_upload_mib as usize,
        no_cache: args.no_cache,
        store: args.store.as_deref().map(store::StoreSpec::parse),
        lease_secs: args.lease_secs,
        login: auth::AuthConfig::from_env().context("reading the login settings")?,
    };
    let state = web::serve::build_state(&options).await?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    // The first line is the address alone: scripts and tests read it.
    eprintln!("listening on http://{}", listener.local_addr()?);
    match &options.login {
        None => eprintln!(
            "local mode: no login configured; data in {}",
            options.data_dir.display()
        ),
        Some(login) => eprintln!(
            "login: Cognito user pool {} (app client {}); data in {}",
            login.user_pool_id,
            login.client_id,
            options.data_dir.display()
        ),
    }
    tracing::info!(addr = %args.addr, data_dir = %options.data_dir.display(), "listening");
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    web::serve::serve_until(listener, state, cancel).await
}

/// The built-in catalog, or it overridden and extended by the user's file.
fn load_catalog(path: Option<&Path>) -> anyhow::Result<Catalog> {
    match path {
        Some(path) => {
            Catalog::load(path).with_context(|| format!("loading catalog {}", path.display()))
        }
        None => Ok(Catalog::embedded()),
    }
}

async fn models(args: &ModelsArgs) -> anyhow::Result<()> {
    if args.sagemaker_endpoints {
        let providers = Providers::from_env(ProviderSettings::default())
            .await
            .context("setting up model providers")?;
        let endpoints = providers
            .list_sagemaker_endpoints()
            .await
            .context("listing SageMaker endpoints")?;
        let rows: Vec<[String; 2]> = endpoints
            .iter()
            .map(|endpoint| {
                [
                    format!("sagemaker:{}", endpoint.name),
                    endpoint.status.clone(),
                ]
            })
            .collect();
        print!("{}", output::aligned_columns(&rows));
        if endpoints.is_empty() {
            eprintln!("no SageMaker endpoints in this account and region");
        }
        return Ok(());
    }
    let catalog = load_catalog(args.catalog.as_deref())?;
    let price = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |p| format!("{p}"));
    let mut rows: Vec<[String; 5]> =
        vec![["alias", "model", "name", "$/1k input", "$/1k output"].map(String::from)];
    rows.extend(catalog.entries().iter().map(|entry| {
        [
            entry.alias.clone(),
            format!("{}:{}", entry.provider, entry.model_id),
            entry.display_name.clone(),
            price(entry.price_per_1k_input),
            price(entry.price_per_1k_output),
        ]
    }));
    print!("{}", output::aligned_columns(&rows));
    Ok(())
}

async fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<Exit> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mut addr = args.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout))
        .build()
        .context("building the HTTP client")?;
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => Ok(Exit::Success),
        Ok(response) => {
            eprintln!("unhealthy: GET {url} answered {}", response.status());
            Ok(Exit::Unhealthy)
        }
        Err(error) => {
            eprintln!("unhealthy: GET {url}: {error}");
            Ok(Exit::Unhealthy)
        }
    }
}

/// Cancels `cancel` on Ctrl-C or SIGTERM.
pub(crate) fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut terminate =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(signal) => signal,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        cancel.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("interrupted: stopping");
        cancel.cancel();
        // A second Ctrl-C does not wait for the clean stop.
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(Exit::Cancelled.code());
        }
    });
}

/// Successes of an earlier run: from its `--out` directory or from the store.
async fn load_prior(run: &str, store: &SharedStore) -> anyhow::Result<PriorResults> {
    let dir = Path::new(run);
    // Streamed row by row into the compact answers: an earlier run's rows hold whole prompts.
    let mut prior = PriorResults::new();
    let mut keep = |row: store::RecordRow| {
        if let Some(answer) = PriorAnswer::from_row(&row) {
            prior.insert(runner::prior_key(&row), answer);
        }
    };
    if dir.is_dir() {
        output::for_each_record_jsonl(&dir.join("records.jsonl"), &mut keep)
            .with_context(|| format!("reading the results of {}", dir.display()))?;
    } else {
        if store.run(&UserId::local(), run).await?.is_none() {
            bail!(
                "--retry-failed: `{run}` is neither a results directory nor a run in {}",
                store.location()
            );
        }
        store::for_each_record(store.as_ref(), &UserId::local(), run, |row| {
            keep(row);
            Ok::<(), store::StoreError>(())
        })
        .await?;
    }
    Ok(prior)
}

/// A plan error as the CLI reports it: the flag of the part at fault first, and the flag that
/// raises the limit in the way, if one is.
fn cli_message(error: &plan::PlanError) -> String {
    let mut message = format!("{}: {error}", flag_of(error.field));
    if let Some(limit) = error.raise {
        let flag = match limit {
            plan::Limit::MaxRecordSize => "--max-record-size",
        };
        message.push_str(&format!("\nhint: {flag} raises the limit"));
    }
    message
}

/// The flag that sets a part of the request, for CLI error messages.
fn flag_of(field: plan::Field) -> &'static str {
    match field {
        plan::Field::Name => "--name",
        plan::Field::Template => "--template",
        plan::Field::Dataset => "--dataset",
        plan::Field::ReferenceField => "--reference-field",
        plan::Field::Models => "--model",
        plan::Field::Metrics => "--metric",
        plan::Field::Judges => "--judge",
        plan::Field::Rubric => "--rubric",
        plan::Field::Selection => "--records/--sample",
        plan::Field::Params => "--temperature/--max-tokens/--top-p",
        plan::Field::Runner => {
            "--concurrency/--max-attempts/--timeout/--max-retry-wait/--record-timeout"
        }
        plan::Field::Task => "--task/--labels/--category-field/--average/--perturbation",
    }
}

/// The stored configuration of the run `--retry-failed` names: a run id in the store, or a
/// results directory (its `summary.json`).
async fn stored_config(run: &str, store: &SharedStore) -> anyhow::Result<serde_json::Value> {
    let dir = Path::new(run);
    if dir.is_dir() {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--retry-failed: reading {}", path.display()))?;
        let summary: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--retry-failed: {} is not a run summary", path.display()))?;
        return Ok(summary.get("config").cloned().unwrap_or_default());
    }
    match store.run(&UserId::local(), run).await? {
        Some(row) => Ok(row.config),
        None => bail!(
            "--retry-failed: `{run}` is neither a results directory nor a run in {}",
            store.location()
        ),
    }
}

/// The evaluation request of the flags, over the stored request of `--retry-failed RUN`
/// when given (a flag given again overrides the stored value).
async fn eval_request(args: &EvalArgs, store: &SharedStore) -> anyhow::Result<EvalRequest> {
    let mut request = match &args.retry_failed {
        Some(run) => {
            let config = stored_config(run, store).await?;
            EvalRequest::from_config(&config)
                .map_err(|error| anyhow::anyhow!("--retry-failed `{run}`: {error}"))?
        }
        None => EvalRequest::new(PathBuf::new(), String::new(), Vec::new(), Vec::new()),
    };
    if let Some(name) = &args.name {
        request.name = name.clone();
    }
    if let Some(dataset) = &args.dataset {
        request.dataset = dataset.clone();
    }
    if !args.templates.is_empty() {
        request.templates = args
            .templates
            .iter()
            .map(|template| {
                Ok(plan::TemplateRequest::unlabeled(
                    load_template(template, args.limits)?.source().to_string(),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(path) = &args.templates_file {
        request.templates = load_variants_file(path, args.limits)?;
    }
    if !args.models.is_empty() {
        request.models = args.models.clone();
    }
    if !args.metrics.is_empty() {
        request.metrics = args.metrics.clone();
    }
    if let Some(task) = args.task {
        request.task.task = Some(task);
        if args.metrics.is_empty() && args.retry_failed.is_none() {
            request.metrics = task.metrics()[..1].to_vec();
        }
    }
    if !args.labels.is_empty() {
        request.task.labels = args.labels.clone();
    }
    if let Some(field) = &args.category_field {
        request.task.category_field = Some(field.clone());
    }
    if let Some(average) = args.average {
        request.task.average = average;
    }
    if args.perturbation.is_some() {
        request.task.perturbation = args.perturbation;
    }
    if let Some(field) = &args.perturb_field {
        request.task.perturb_field = Some(field.clone());
    }
    if !args.judges.is_empty() {
        request.judges = args.judges.clone();
    }
    if let Some(field) = &args.reference_field {
        request.reference_field = field.clone();
    }
    if let Some(path) = &args.rubric {
        request.rubric = Some(read_capped_text(path, args.limits).context("reading the rubric")?);
    }
    match (args.records, args.sample) {
        (Some(n), _) => request.selection = Selection::First(n),
        (None, Some(n)) => {
            request.selection = Selection::Sample {
                n,
                seed: args.seed.unwrap_or(DEFAULT_SEED),
            }
        }
        (None, None) => {}
    }
    if args.temperature.is_some() {
        request.params.temperature = args.temperature;
    }
    if args.max_tokens.is_some() {
        request.params.max_tokens = args.max_tokens;
    }
    if args.top_p.is_some() {
        request.params.top_p = args.top_p;
    }
    if args.service_tier.is_some() {
        request.params.service_tier = args.service_tier;
    }
    if args.latency.is_some() {
        request.params.latency = args.latency;
    }
    if let Some(concurrency) = args.concurrency {
        request.concurrency = concurrency as usize;
    }
    if let Some(attempts) = args.max_attempts {
        request.max_attempts = attempts;
    }
    if let Some(timeout) = args.timeout {
        request.timeout = Duration::from_secs_f64(timeout);
    }
    if let Some(wait) = args.max_retry_wait {
        request.max_retry_wait = Duration::from_secs_f64(wait);
    }
    if let Some(bound) = args.record_timeout {
        request.record_timeout = Duration::from_secs_f64(bound);
    }
    // A limit of this reading, not of the stored run: always the flag's value.
    request.max_record_size = args.limits.max_record_size;
    request.max_prompt_size = args.limits.max_prompt_size;
    Ok(request)
}

async fn eval(args: EvalArgs) -> anyhow::Result<Exit> {
    // Configuration first: nothing below calls a model until all of it is checked.
    let catalog = load_catalog(args.catalog.as_deref())?;
    let spec = match &args.store {
        Some(text) => StoreSpec::parse(text),
        None => StoreSpec::Sqlite(default_store_path()),
    };
    let bucket = std::env::var("DATA_BUCKET").ok();
    let store = spec
        .open(&store::default_data_dir(), bucket.as_deref())
        .await?;
    let request = eval_request(&args, &store).await?;
    let score_names: Vec<&str> = request
        .metrics
        .iter()
        .flat_map(|metric| metric.score_names().iter().copied())
        .collect();
    let summary_names: Vec<&str> = request
        .metrics
        .iter()
        .flat_map(|metric| metric.summary_score_names().iter().copied())
        .collect();
    for threshold in &args.fail_under {
        let score = output::threshold_score_name(&threshold.metric);
        if !summary_names.contains(&score.as_str()) {
            bail!(
                "--fail-under {}: the run computes no score `{score}` (it computes: {})",
                threshold.metric,
                summary_names.join(", ")
            );
        }
    }
    // The runner's timeout is the authority; the HTTP clients' own timeout only backs it up.
    let mut settings = ProviderSettings {
        openai_secret_name: args.openai_secret_name.clone(),
        max_response: Some(args.max_response_size),
        ..ProviderSettings::default()
    };
    settings.timeouts.request = request.timeout + Duration::from_secs(5);
    let providers = Providers::from_env(settings)
        .await
        .context("setting up model providers")?;
    let plan = plan::build_plan(&request, &catalog, &providers)
        .await
        .map_err(|error| anyhow::anyhow!("{}", cli_message(&error)))?;
    // The cost before any call: printed, and kept with the run beside the measured cost.
    let plan = Arc::new(plan);
    let estimate = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || engine::estimate::estimate(&plan)).await??
    };
    if !args.quiet {
        eprintln!("{}", estimate_line(&estimate));
    }
    let mut plan = Arc::unwrap_or_clone(plan);
    plan.estimated_cost_usd = estimate.total_usd;
    // A retry runs as the run it retries did (its mode, its judges' mode), unless --mode and
    // --judge-mode say otherwise.
    let stored = match &args.retry_failed {
        Some(run) => Some(stored_config(run, &store).await?),
        None => None,
    };
    let stored_text = |key: &str| {
        stored
            .as_ref()
            .and_then(|config| config.get(key))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let mode = args
        .batch
        .mode
        .or_else(|| stored_text("mode").and_then(|mode| mode.parse().ok()))
        .unwrap_or_default();
    // A batch run stored before judges had a batch phase asked them online.
    let judge_mode = args.batch.judge_mode.unwrap_or_else(|| {
        match (stored_text("mode"), stored_text("judge_mode")) {
            (_, Some(judge_mode)) => judge_mode.parse().unwrap_or_default(),
            (Some(mode), None) if mode == RunMode::Batch.as_str() => {
                engine::batch::JudgeMode::Online
            }
            _ => engine::batch::JudgeMode::default(),
        }
    });
    if mode == RunMode::Online && args.batch.judge_mode.is_some() {
        bail!("--judge-mode is a setting of batch runs (--mode batch)");
    }
    // A batch retry reads the earlier run's answers itself (and so does whoever finishes it).
    let prior = match &args.retry_failed {
        Some(run) if mode == RunMode::Online => Some(Arc::new(load_prior(run, &store).await?)),
        _ => None,
    };
    let cache = if args.no_cache {
        None
    } else {
        let dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
        Some(ResponseCache::open_dir(&dir)?)
    };

    let run_id = store::new_run_id();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("eval-results").join(&run_id));
    // Checked now, so that an unusable --out fails before the model calls, not after them, and
    // neither an input nor earlier results are overwritten unasked.
    // (An earlier run's results read by --retry-failed are in memory by now; replacing them
    // in place needs --replace.)
    let inputs: Vec<&Path> = [Some(request.dataset.as_path())]
        .into_iter()
        .chain(
            args.templates
                .iter()
                .map(|template| Some(Path::new(template.as_str()))),
        )
        .chain([
            args.templates_file.as_deref(),
            args.rubric.as_deref(),
            args.catalog.as_deref(),
        ])
        .flatten()
        .collect();
    output::prepare_out_dir(&out_dir, &inputs, args.replace)?;
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    let (events, _) = broadcast::channel(1024);
    let bar = (!args.quiet && std::io::stderr().is_terminal())
        .then(|| spawn_progress_bar(events.subscribe()));
    let context = RunContext {
        store: store.clone(),
        owner: UserId::local(),
        cache,
        events: events.clone(),
        cancel,
    };
    let columns = plan.columns();
    let plan = Arc::new(plan);
    let outcome = match mode {
        RunMode::Online => runner::run(plan.clone(), &run_id, context, prior).await?,
        RunMode::Batch => {
            let retry = match &args.retry_failed {
                Some(run) => Some(crate::batch_cli::number_retry(run, &store).await?),
                None => None,
            };
            let mut batch = crate::batch_cli::prepare(
                &args.batch,
                judge_mode,
                plan.clone(),
                &catalog,
                &run_id,
                context,
            )
            .await?;
            if let Some(retry) = retry {
                batch = batch.with_retry(retry);
            }
            let lines = (bar.is_none() && !args.quiet)
                .then(|| crate::batch_cli::spawn_status_lines(events.subscribe()));
            if args.batch.detach {
                let state = batch.submit().await?;
                crate::batch_cli::print_detached(&run_id, &state);
                return Ok(Exit::Success);
            }
            let outcome = batch.run().await?;
            drop(lines);
            if !args.quiet {
                eprintln!("batch: {} S3 requests", batch.s3_requests());
            }
            outcome
        }
    };
    drop(events);
    if let Some(bar) = bar {
        let _ = bar.await;
    }
    let summary = output::export(
        store.as_ref(),
        &UserId::local(),
        &outcome,
        plan.config_json(),
        &columns,
        &score_names,
        &out_dir,
    )
    .await
    .with_context(|| format!("writing results to {}", out_dir.display()))?;
    print!("{}", output::render_table(&summary));
    eprintln!("results: {}", out_dir.display());
    if outcome.status == RunStatus::Cancelled {
        eprintln!(
            "cancelled: {} of {} evaluations finished and were written",
            outcome.done + outcome.failed,
            outcome.total
        );
        return Ok(Exit::Cancelled);
    }
    if mode == RunMode::Batch
        && let Some(error) = crate::batch_cli::report(&store, &UserId::local(), &run_id).await?
    {
        eprintln!("error: {error}");
        return Ok(Exit::BelowThreshold);
    }
    let violations = output::check_thresholds(&summary, &args.fail_under);
    for violation in &violations {
        eprintln!("fail-under: {violation}");
    }
    // A model that answered nothing gives no result to read: say so in the exit code too, so a
    // script without --fail-under does not take an all-failed run for a success.
    let silent_models: Vec<&str> = summary
        .models
        .iter()
        .filter(|model| model.n_records > 0 && model.n_failed == model.n_records)
        .map(|model| model.model.as_str())
        .collect();
    for model in &silent_models {
        eprintln!("error: every record of `{model}` failed (see `error` in records.jsonl)");
    }
    Ok(if violations.is_empty() && silent_models.is_empty() {
        Exit::Success
    } else {
        Exit::BelowThreshold
    })
}

/// Draws an indicatif bar on stderr from progress events until the channel closes.
fn spawn_progress_bar(
    mut events: broadcast::Receiver<ProgressEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        let mut progress = Progress::new(0);
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            progress.apply(&event);
            if let ProgressEvent::Started { total, .. } = event {
                bar.set_length(total as u64);
            }
            bar.set_position(progress.finished() as u64);
            let eta = progress
                .eta()
                .map_or_else(|| "-".to_string(), |eta| format!("{}s", eta.as_secs()));
            let window = match &event {
                ProgressEvent::Throttled { model, window } => {
                    format!(" throttled {model}: window {window}")
                }
                ProgressEvent::BatchJobs {
                    status,
                    processed,
                    records,
                } => format!(" · {status}, {processed}/{records} processed"),
                _ => String::new(),
            };
            bar.set_message(format!(
                "failed {} · {:.1}/s · eta {eta}{window}",
                progress.failed,
                progress.rate()
            ));
        }
        bar.finish_and_clear();
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(args: &[&str], expected_ok: bool) {
        let res = Cli::try_parse_from(std::iter::once("llm-eval").chain(args.iter().copied()));
        assert_eq!(res.is_ok(), expected_ok, "{args:?}: {res:?}");
    }

    #[test]
    fn flag_parsing() {
        let base = [
            "eval",
            "--dataset",
            "d.jsonl",
            "--template",
            "{q}",
            "--model",
            "openai:m",
            "--metric",
            "qa_accuracy",
        ];
        check(&base, true);
        check(&[&base[..], &["--records", "5"]].concat(), true);
        check(
            &[&base[..], &["--sample", "5", "--seed", "7"]].concat(),
            true,
        );
        check(
            &[&base[..], &["--records", "5", "--sample", "5"]].concat(),
            false,
        );
        check(&[&base[..], &["--seed", "7"]].concat(), false);
        check(&[&base[..], &["--metric", "bleu"]].concat(), false);
        check(&[&base[..], &["--concurrency", "0"]].concat(), false);
        check(&[&base[..], &["--records", "0"]].concat(), false);
        check(&[&base[..], &["--sample", "0"]].concat(), false);
        check(&[&base[..], &["--records", "-1"]].concat(), false);
        check(
            &[
                &base[..],
                &[
                    "--fail-under",
                    "f1_score=0.5",
                    "--fail-under",
                    "exact_match_score=0",
                ],
            ]
            .concat(),
            true,
        );
        check(&[&base[..], &["--fail-under", "f1_score"]].concat(), false);
        check(
            &[
                "eval",
                "--dataset",
                "d.jsonl",
                "--template",
                "{q}",
                "--metric",
                "qa_accuracy",
            ],
            false,
        );
        check(&["serve"], true);
        check(&["serve", "--addr", "127.0.0.1:0"], true);
        check(&["serve", "--addr", "nope"], false);
        check(
            &["preview", "--dataset", "d.jsonl", "--template", "{q}"],
            true,
        );
    }

    #[test]
    fn regression_huge_timeout_is_a_usage_error_not_a_panic() {
        let eval = |timeout: &str| {
            vec![
                "eval",
                "--dataset",
                "d.jsonl",
                "--template",
                "{q}",
                "--model",
                "openai:m",
                "--metric",
                "qa_accuracy",
                "--timeout",
            ]
            .into_iter()
            .chain([timeout])
            .map(str::to_owned)
            .collect::<Vec<String>>()
        };
        let check_timeout = |args: Vec<String>, expected_ok: bool| {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            check(&refs, expected_ok);
        };
        check_timeout(eval("0.5"), true);
        check_timeout(eval("86400"), true);
        check_timeout(eval("0"), false);
        check_timeout(eval("-1"), false);
        check_timeout(eval("NaN"), false);
        check_timeout(eval("1e20"), false);
        check(&["healthcheck", "--timeout", "1e20"], false);
        check(&["healthcheck", "--timeout", "2"], true);
    }

    const LIMITS: InputLimits = InputLimits {
        max_record_size: engine::limits::DEFAULT_MAX_RECORD,
        max_template_size: engine::limits::DEFAULT_MAX_TEMPLATE,
        max_prompt_size: engine::limits::DEFAULT_MAX_PROMPT,
    };

    fn check_template(text: &str, expected: Result<&[&str], &str>) {
        let got = load_template(text, LIMITS)
            .map(|template| {
                template
                    .fields()
                    .iter()
                    .map(|field| field.to_string())
                    .collect::<Vec<String>>()
            })
            .map_err(|error| format!("{error:#}"));
        match expected {
            Ok(fields) => assert_eq!(got.unwrap(), fields, "{text}"),
            Err(needle) => {
                let message = got.expect_err(text);
                assert!(message.contains(needle), "{text}: {message}");
            }
        }
    }

    #[test]
    fn regression_template_path_typo_is_not_sent_as_the_prompt() {
        check_template("prompt.txt", Err("`prompt.txt`: no such file"));
        check_template("prompts/qa", Err("`prompts/qa`: no such file"));
        check_template("Say hello", Err("uses no field"));
        check_template("Q: {question}", Ok(&["question"]));
        check_template("{{literal}} {a}", Ok(&["a"]));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fixed.txt");
        std::fs::write(&file, "Human: no field\nAssistant:").unwrap();
        check_template(file.to_str().unwrap(), Err("uses no field"));
        std::fs::write(&file, "Human: {q}\nAssistant:").unwrap();
        check_template(file.to_str().unwrap(), Ok(&["q"]));
        // A template file over the limit is refused, naming the flag.
        std::fs::write(&file, "{q}".repeat(1000)).unwrap();
        let small = InputLimits {
            max_template_size: engine::limits::ByteSize(1000),
            ..LIMITS
        };
        let error = format!(
            "{:#}",
            load_template(file.to_str().unwrap(), small).unwrap_err()
        );
        assert!(
            error.contains("is larger than 1000 bytes, the limit of --max-template-size"),
            "{error}"
        );
    }

    #[test]
    fn regression_template_file_with_bom_and_crlf_keeps_its_role_markers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("windows.txt");
        std::fs::write(
            &file,
            "\u{feff}System: Be brief.\r\nHuman: {question}\r\nAssistant:\r\n",
        )
        .unwrap();
        let template = load_template(file.to_str().unwrap(), LIMITS).unwrap();
        assert_eq!(
            template.source(),
            "System: Be brief.\nHuman: {question}\nAssistant:\n"
        );
        let record = engine::dataset::Record {
            index: 0,
            line: 1,
            fields: serde_json::json!({"question": "Why?"})
                .as_object()
                .unwrap()
                .clone(),
        };
        let rendered = template.render(&record).unwrap();
        let roles: Vec<engine::chat::Role> = rendered
            .messages
            .iter()
            .map(|message| message.role)
            .collect();
        assert_eq!(
            roles,
            [engine::chat::Role::System, engine::chat::Role::User]
        );
        assert_eq!(
            rendered.text,
            "System: Be brief.\nHuman: Why?\nAssistant:\n"
        );
    }

    #[test]
    fn run_ids_look_like_timestamps() {
        let id = store::new_run_id();
        assert_eq!(id.len(), "20260101T120000Z-3fa2c09e5b7d1e44".len(), "{id}");
        assert!(id.starts_with("20"), "{id}");
        assert_eq!(&id[8..9], "T");
        // 64 random bits: ids of the same second differ.
        assert_ne!(id[17..], store::new_run_id()[17..]);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(args in proptest::collection::vec(".*", 0..6)) {
            let _ = Cli::try_parse_from(std::iter::once("llm-eval".to_string()).chain(args));
        }
    }
}
