//! Batch runs (Amazon Bedrock batch inference) against the Bedrock control-plane double and
//! moto's S3, through the real `aws-sdk-bedrock` and `aws-sdk-s3` clients: every record is
//! scored and stored exactly once whatever order the outputs come in, partial failures keep
//! Bedrock's message, a retried create never starts a second job, cancel stops the jobs and
//! keeps what they processed, failed and expired jobs end the run with the reason, a full job
//! quota is waited out, small selections run online, unsupported models are refused.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::batch::{BatchClients, BatchError, BatchRun, BatchSettings, BatchState};
use engine::catalog::Catalog;
use engine::dataset::Dataset;
use engine::judge::Rubric;
use engine::progress::ProgressEvent;
use engine::providers::aws::{Timeouts, local_sdk_config};
use engine::providers::bedrock::BedrockProvider;
use engine::runner::{EvalPlan, ModelClient, RunContext};
use engine::template::PromptTemplate;
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::sample::Selection;
use model_doubles::bedrock_control::BedrockControl;
use model_doubles::{Answer, BatchBehavior, ModelServer, Moto};
use store::{RecordRow, RunStatus};

use crate::helpers::{context, fast_config, openai_client, start};

const BUCKET: &str = "batch-bucket";
const ROLE: &str = "arn:aws:iam::123456789012:role/llm-eval-batch";

/// "What is item 7?" → "answer 7": every answer right, so scores show the join is right.
fn answer() -> Answer {
    Answer::from_fn(|prompt| {
        let number: String = prompt.text.chars().filter(char::is_ascii_digit).collect();
        format!("answer {number}")
    })
}

struct Setup {
    _moto: Moto,
    bedrock: BedrockControl,
    online: ModelServer,
    _dir: tempfile::TempDir,
    clients: BatchClients,
    context: RunContext,
    dataset: PathBuf,
}

async fn setup(n_records: usize, behavior: impl FnOnce(&mut BatchBehavior)) -> Setup {
    let moto = Moto::start().await;
    let mut batch = BatchBehavior::new(moto.url(), answer());
    batch.step = Duration::from_millis(20);
    behavior(&mut batch);
    let bedrock = BedrockControl::start_with_batch("us-east-1", Vec::new(), batch)
        .await
        .unwrap();
    let sdk = store::dynamo::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let clients = BatchClients::with_endpoints(&sdk, &bedrock.url(), moto.url());
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(moto.url())
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("items.jsonl");
    let lines: Vec<String> = (0..n_records)
        .map(|i| {
            serde_json::json!({"question": format!("What is item {i}?"), "answers": format!("answer {i}")})
                .to_string()
        })
        .collect();
    std::fs::write(&dataset, lines.join("\n")).unwrap();
    let online = start(answer(), model_doubles::FaultPlan::none()).await;
    Setup {
        context: context(dir.path()),
        _moto: moto,
        bedrock,
        online,
        _dir: dir,
        clients,
        dataset,
    }
}

impl Setup {
    /// A Bedrock model of the catalog, called online through the model double.
    fn model(&self, alias: &str) -> ModelClient {
        let spec = Catalog::embedded().resolve(alias).unwrap();
        let provider = BedrockProvider::new(
            &local_sdk_config(&self.online.url()),
            Timeouts::default(),
            engine::limits::DEFAULT_MAX_RESPONSE,
        );
        ModelClient {
            label: alias.to_owned(),
            provider: Arc::new(provider),
            model_id: spec.model_id,
            params: spec.params,
            price_per_1k_input: spec.price_per_1k_input,
            price_per_1k_output: spec.price_per_1k_output,
        }
    }

    fn plan(&self, models: Vec<ModelClient>) -> Arc<EvalPlan> {
        Arc::new(EvalPlan {
            name: String::new(),
            estimated_cost_usd: None,
            dataset: Dataset::open(&self.dataset).unwrap(),
            variants: vec![engine::runner::Variant {
                label: engine::runner::DEFAULT_VARIANT.to_string(),
                template: PromptTemplate::parse("{question}").unwrap(),
            }],
            reference_field: "answers".into(),
            selection: Selection::All,
            metrics: vec![MetricName::QaAccuracy],
            models,
            judges: Vec::new(),
            rubric: Rubric::default_rubric(),
            config: fast_config(4),
            params: Default::default(),
            task: Default::default(),
        })
    }

    fn settings(&self, per_job: usize) -> BatchSettings {
        let mut settings = BatchSettings::new(BUCKET, ROLE);
        settings.poll_interval = Duration::from_millis(20);
        settings.max_wait = Duration::from_secs(120);
        settings.max_records_per_job = per_job;
        settings
    }

    fn batch(&self, run_id: &str, models: &[&str], per_job: usize) -> BatchRun {
        let models = models.iter().map(|alias| self.model(alias)).collect();
        BatchRun::new(
            self.plan(models),
            &Catalog::embedded(),
            run_id,
            self.context.clone(),
            self.clients.clone(),
            self.settings(per_job),
        )
        .unwrap()
    }

    async fn rows(&self, run_id: &str) -> Vec<RecordRow> {
        store::all_records(self.context.store.as_ref(), &self.context.owner, run_id)
            .await
            .unwrap()
    }

    async fn state(&self, run_id: &str) -> (RunStatus, BatchState, serde_json::Value) {
        let run = self
            .context
            .store
            .run(&self.context.owner, run_id)
            .await
            .unwrap()
            .unwrap();
        let state = BatchState::of_summary(run.summary.as_ref()).unwrap();
        (run.status, state, run.summary.unwrap())
    }
}

/// Every (model, position) exactly once.
fn assert_each_once(rows: &[RecordRow], models: &[&str], n: usize) {
    let mut seen: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for row in rows {
        *seen.entry((row.model.clone(), row.position)).or_default() += 1;
    }
    assert_eq!(rows.len(), models.len() * n);
    for model in models {
        for position in 0..n {
            assert_eq!(seen.get(&((*model).to_owned(), position)), Some(&1));
        }
    }
}

#[tokio::test]
async fn batch_run_scores_every_record_once_joined_by_record_id() {
    let setup = setup(300, |batch| {
        batch.record_error_every = Some(50);
        batch.throttle_every = Some(4);
    })
    .await;
    let models = ["claude-3-haiku", "nova-lite"];
    let batch = setup.batch("run-a", &models, 150);
    let outcome = batch.run().await.unwrap();

    assert_eq!(outcome.status, RunStatus::Finished);
    // Two jobs of 150 per model, every 50th record of a job failed by the double.
    assert_eq!(
        (outcome.total, outcome.done, outcome.failed),
        (600, 588, 12)
    );
    let rows = setup.rows("run-a").await;
    assert_each_once(&rows, &models, 300);
    let haiku = Catalog::embedded()
        .resolve("claude-3-haiku")
        .unwrap()
        .batch_price
        .unwrap();
    for row in &rows {
        match &row.error {
            None => {
                assert_eq!(
                    row.model_output.as_deref(),
                    Some(format!("answer {}", row.index).as_str()),
                    "answers are joined by recordId, not by output order"
                );
                assert_eq!(row.scores[0].value.as_f64(), 1.0, "{:?}", row.scores);
                if row.model == "claude-3-haiku" {
                    let cost = haiku.cost(row.input_tokens.unwrap(), row.output_tokens.unwrap());
                    assert_eq!(row.cost_usd, Some(cost), "priced at the batch price");
                }
            }
            Some(error) => assert!(
                error.starts_with("Bedrock batch: ModelErrorException")
                    && error.contains("(error 500)"),
                "{error}"
            ),
        }
    }
    assert_eq!(setup.bedrock.batch_jobs().len(), 4);
    let (status, state, summary) = setup.state("run-a").await;
    assert_eq!(status, RunStatus::Finished);
    assert_eq!(state.jobs.len(), 4);
    assert!(
        state
            .jobs
            .iter()
            .all(|job| job.job_arn.contains(":model-invocation-job/")
                && job.status == "PartiallyCompleted"
                && job.records == 150)
    );
    assert!(summary.get("error").is_none());
    // The online double was never called: every answer came from the jobs.
    assert_eq!(setup.online.stats().requests, 0);
}

#[tokio::test]
async fn a_run_picked_up_again_repeats_no_job_and_no_row() {
    let setup = setup(120, |_| {}).await;
    let batch = setup.batch("run-b", &["claude-3-haiku"], 50_000);
    let submitted = batch.submit().await.unwrap();
    assert_eq!(submitted.jobs.len(), 1);
    // The process died before it noted that the jobs were created: the next one creates them
    // again with the same clientRequestTokens, and Bedrock answers with the same job.
    let mut lost = submitted.clone();
    lost.submitted = false;
    lost.jobs.clear();
    setup
        .context
        .store
        .finish_run(
            &setup.context.owner,
            "run-b",
            RunStatus::Interrupted,
            &serde_json::json!({"batch": lost}),
        )
        .await
        .unwrap();
    let again = setup.batch("run-b", &["claude-3-haiku"], 50_000);
    let outcome = again.finish().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Finished);
    assert_eq!(setup.bedrock.batch_jobs().len(), 1, "no second job");
    let (_, state, _) = setup.state("run-b").await;
    assert_eq!(state.jobs[0].job_arn, submitted.jobs[0].job_arn);
    // Once more: everything is stored already, nothing is stored twice.
    let third = setup.batch("run-b", &["claude-3-haiku"], 50_000);
    let outcome = third.finish().await.unwrap();
    assert_eq!((outcome.done, outcome.failed), (120, 0));
    assert_each_once(&setup.rows("run-b").await, &["claude-3-haiku"], 120);
    assert_eq!(setup.bedrock.batch_jobs().len(), 1);
}

#[tokio::test]
async fn cancel_stops_the_jobs_and_keeps_what_they_processed() {
    let setup = setup(400, |batch| batch.step = Duration::from_millis(150)).await;
    let batch = setup.batch("run-c", &["claude-3-haiku"], 50_000);
    let mut events = setup.context.events.subscribe();
    let cancel = setup.context.cancel.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let ProgressEvent::BatchJobs { processed, .. } = event
                && processed > 0
            {
                cancel.cancel();
                return processed;
            }
        }
        0
    });
    let outcome = batch.run().await.unwrap();
    let seen = watcher.await.unwrap();
    assert!(seen > 0 && seen < 400, "cancelled mid-job at {seen}");
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_eq!(setup.bedrock.batch_jobs()[0].2, "Stopped");
    let rows = setup.rows("run-c").await;
    assert_each_once(&rows, &["claude-3-haiku"], 400);
    let kept = rows.iter().filter(|row| row.is_ok()).count();
    assert!(kept >= seen && kept < 400, "kept {kept}");
    let stopped = rows.iter().find(|row| !row.is_ok()).unwrap();
    assert!(
        stopped.error.as_deref().unwrap().contains("ended Stopped"),
        "{:?}",
        stopped.error
    );
}

#[tokio::test]
async fn failed_and_expired_jobs_end_the_run_with_the_reason() {
    let setup = setup(200, |batch| {
        batch.fail_models = vec!["anthropic.claude-3-haiku-20240307-v1:0".into()];
        batch.expire_models = vec!["amazon.nova-lite-v1:0".into()];
    })
    .await;
    let models = ["claude-3-haiku", "nova-lite"];
    let outcome = setup.batch("run-d", &models, 50_000).run().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Failed);
    let rows = setup.rows("run-d").await;
    assert_each_once(&rows, &models, 200);
    let haiku_failed = rows
        .iter()
        .filter(|row| row.model == "claude-3-haiku")
        .all(|row| {
            row.error
                .as_deref()
                .is_some_and(|e| e.contains("ended Failed: Internal Server Error"))
        });
    assert!(haiku_failed);
    let nova_ok = rows
        .iter()
        .filter(|row| row.model == "nova-lite" && row.is_ok())
        .count();
    assert_eq!(nova_ok, 100, "the expired job's first half is kept");
    let (status, _, summary) = setup.state("run-d").await;
    assert_eq!(status, RunStatus::Failed);
    assert!(
        summary["error"].as_str().unwrap().contains("ended Failed"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_full_job_quota_is_waited_out() {
    let setup = setup(150, |batch| batch.max_active_jobs = 1).await;
    let models = ["claude-3-haiku", "nova-lite"];
    let outcome = setup.batch("run-e", &models, 50_000).run().await.unwrap();
    assert_eq!(outcome.status, RunStatus::Finished);
    assert_eq!((outcome.done, outcome.failed), (300, 0));
    assert_eq!(setup.bedrock.batch_jobs().len(), 2);
}

#[tokio::test]
async fn fewer_than_100_records_run_online_and_the_run_says_so() {
    let setup = setup(40, |_| {}).await;
    let outcome = setup
        .batch("run-f", &["claude-3-haiku"], 50_000)
        .run()
        .await
        .unwrap();
    assert_eq!((outcome.status, outcome.done), (RunStatus::Finished, 40));
    assert!(setup.bedrock.batch_jobs().is_empty());
    assert_eq!(setup.online.stats().requests, 40);
    let (_, state, _) = setup.state("run-f").await;
    assert!(
        state.online[0]
            .reason
            .contains("runs online: 40 selected records"),
        "{:?}",
        state.online
    );
}

#[tokio::test]
async fn models_without_batch_support_are_refused_with_the_reason() {
    let setup = setup(1, |_| {}).await;
    let refuse = |models: Vec<ModelClient>| {
        BatchRun::new(
            setup.plan(models),
            &Catalog::embedded(),
            "run-g",
            setup.context.clone(),
            setup.clients.clone(),
            setup.settings(50_000),
        )
        .unwrap_err()
    };
    let unpriced = refuse(vec![setup.model("claude-3-sonnet")]);
    assert!(
        matches!(&unpriced, BatchError::Unsupported { model, reason } if model == "claude-3-sonnet" && reason.contains("no batch price")),
        "{unpriced}"
    );
    let openai = refuse(vec![openai_client(&setup.online, "gpt")]);
    assert!(
        openai
            .to_string()
            .contains("batch inference is Amazon Bedrock's"),
        "{openai}"
    );
    let mut bad = setup.settings(50_000);
    bad.role_arn = "not-a-role".into();
    let error = BatchRun::new(
        setup.plan(vec![setup.model("claude-3-haiku")]),
        &Catalog::embedded(),
        "run-g",
        setup.context.clone(),
        setup.clients.clone(),
        bad,
    )
    .unwrap_err();
    assert!(error.to_string().starts_with("batch role ARN:"), "{error}");
}

/// The double speaks the protocol the SDK expects: idempotent creates, quota refusals,
/// not-found errors, listings and stops.
#[tokio::test]
async fn the_double_speaks_the_batch_protocol() {
    use aws_sdk_bedrock::types::{
        ModelInvocationJobInputDataConfig as Input, ModelInvocationJobOutputDataConfig as Output,
        ModelInvocationJobS3InputDataConfig as S3In, ModelInvocationJobS3OutputDataConfig as S3Out,
    };
    let setup = setup(1, |batch| {
        batch.max_active_jobs = 1;
        batch.step = Duration::from_millis(300);
    })
    .await;
    let sdk = local_sdk_config(&setup.bedrock.url());
    let client = aws_sdk_bedrock::Client::new(&sdk);
    let create = |name: &str, token: &str| {
        client
            .create_model_invocation_job()
            .job_name(name)
            .client_request_token(token)
            .model_id("amazon.nova-lite-v1:0")
            .role_arn(ROLE)
            .input_data_config(Input::S3InputDataConfig(
                S3In::builder()
                    .s3_uri(format!("s3://{BUCKET}/in/x.jsonl"))
                    .build()
                    .unwrap(),
            ))
            .output_data_config(Output::S3OutputDataConfig(
                S3Out::builder()
                    .s3_uri(format!("s3://{BUCKET}/out/"))
                    .build()
                    .unwrap(),
            ))
            .send()
    };
    let first = create("job-a", "token-a").await.unwrap();
    let again = create("job-a", "token-a").await.unwrap();
    assert_eq!(first.job_arn(), again.job_arn());
    let refused = create("job-b", "token-b").await.unwrap_err();
    assert!(
        refused
            .into_service_error()
            .is_service_quota_exceeded_exception()
    );
    let missing = client
        .get_model_invocation_job()
        .job_identifier("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .into_service_error()
            .is_resource_not_found_exception()
    );
    // The input does not exist: the job fails in validation, with a message.
    let mut job = None;
    for _ in 0..200 {
        let got = client
            .get_model_invocation_job()
            .job_identifier(first.job_arn())
            .send()
            .await
            .unwrap();
        if got
            .status()
            .is_some_and(|status| status.as_str() == "Failed")
        {
            job = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = job.expect("the job fails");
    assert!(
        job.message().unwrap().contains("Cannot read"),
        "{:?}",
        job.message()
    );
    let listed = client
        .list_model_invocation_jobs()
        .name_contains("job-")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.invocation_job_summaries().len(), 1);
    let stop = client
        .stop_model_invocation_job()
        .job_identifier(first.job_arn())
        .send()
        .await
        .unwrap_err();
    assert!(
        stop.into_service_error().is_validation_exception(),
        "an ended job cannot be stopped"
    );
}
