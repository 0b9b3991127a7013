//! Reading a batch run's outputs: every `.jsonl.out` object of every job, streamed line by
//! line (a line longer than the setting's bound is an error, never buffered), joined to the
//! run's records by `recordId`, whatever order Bedrock wrote them in. An output line holds the
//! Converse response (`modelOutput`: text and `usage`, priced at the model's batch price) or
//! Bedrock's `error` (`errorCode`, `errorMessage`), stored as the record's error.
//!
//! The judge phase's outputs are read the same way, per judge, as the verdicts the runner
//! takes instead of asking the judges ([`read_verdicts`]).
//!
//! Memory: one answer per record of the run until the runner stores it (the answer text and
//! four numbers; never the request bodies that the output lines repeat).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use super::aws::BatchClients;
use super::{BatchError, BatchSettings, BatchState, JobState, chunk};
use crate::catalog::BatchPrice;
use crate::runner::{AnswerSource, ExternalAnswer, VerdictSource};

/// Output objects per job at most (Bedrock writes one per input file, and a manifest).
const MAX_OUTPUT_OBJECTS: usize = 1_000;

/// The answers of a batch run, taken out one by one by the runner.
#[derive(Debug)]
pub(super) struct BatchAnswers {
    answers: Mutex<HashMap<(usize, usize), Result<ExternalAnswer, String>>>,
    /// (model order, first, last, reason a record without output failed).
    jobs: Vec<(usize, usize, usize, String)>,
}

impl AnswerSource for BatchAnswers {
    fn answer(
        &self,
        model_order: usize,
        position: usize,
    ) -> Option<Result<ExternalAnswer, String>> {
        let taken = self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(model_order, position));
        if taken.is_some() {
            return taken;
        }
        // A record sent in a job without an output line: the job ended before it.
        self.jobs
            .iter()
            .find(|(order, first, last, _)| {
                *order == model_order && (*first..=*last).contains(&position)
            })
            .map(|(_, _, _, reason)| Err(reason.clone()))
    }
}

impl BatchAnswers {
    /// The answers' texts by (column, position), failed records left out (what the judges
    /// are asked about).
    pub(super) fn into_texts(self) -> HashMap<(usize, usize), String> {
        self.answers
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .into_iter()
            .filter_map(|(pair, answer)| Some((pair, answer.ok()?.text)))
            .collect()
    }
}

/// The judges' replies of a batch run's judge phase, per judge.
#[derive(Debug)]
pub(super) struct BatchVerdicts {
    by_judge: Vec<BatchAnswers>,
}

impl VerdictSource for BatchVerdicts {
    fn reply(
        &self,
        judge: usize,
        model_order: usize,
        position: usize,
    ) -> Option<Result<ExternalAnswer, String>> {
        self.by_judge.get(judge)?.answer(model_order, position)
    }
}

/// Every judge fails with the reason: the judge phase could not run (its answer jobs did
/// not all complete).
#[derive(Debug)]
pub(super) struct NoVerdicts(pub(super) String);

impl VerdictSource for NoVerdicts {
    fn reply(&self, _: usize, _: usize, _: usize) -> Option<Result<ExternalAnswer, String>> {
        Some(Err(self.0.clone()))
    }
}

/// The part of an output line we read (`modelInput` is skipped, not kept).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputLine {
    record_id: String,
    model_output: Option<Value>,
    error: Option<Value>,
}

/// Reads every job's outputs.
pub(super) async fn read(
    clients: &BatchClients,
    state: &BatchState,
    prices: &[BatchPrice],
    settings: &BatchSettings,
) -> Result<BatchAnswers, BatchError> {
    let mut answers = HashMap::new();
    let mut jobs = Vec::new();
    let n_models = prices.len().max(1);
    for job in state
        .jobs
        .iter()
        .filter(|job| job.phase == chunk::Phase::Answers)
    {
        jobs.push((job.model_order, job.first, job.last, job.reason()));
        let price = prices.get(job.model_order % n_models).copied();
        read_job(clients, job, price, settings, &mut answers).await?;
    }
    Ok(BatchAnswers {
        answers: Mutex::new(answers),
        jobs,
    })
}

/// Reads every judge job's outputs: judge `j`'s replies at `prices[j]`. A record without a
/// reply fails with its job's reason when the job did not complete; a completed job's range
/// may hold answers it was not sent (answered online), which the judge is asked about online.
pub(super) async fn read_verdicts(
    clients: &BatchClients,
    state: &BatchState,
    prices: &[Option<BatchPrice>],
    settings: &BatchSettings,
) -> Result<BatchVerdicts, BatchError> {
    let mut by_judge = Vec::with_capacity(prices.len());
    for (judge, price) in prices.iter().enumerate() {
        let mut answers = HashMap::new();
        let mut jobs = Vec::new();
        for job in state
            .jobs
            .iter()
            .filter(|job| job.phase == chunk::Phase::Judge { judge })
        {
            if !matches!(job.status.as_str(), "Completed" | "PartiallyCompleted") {
                jobs.push((job.model_order, job.first, job.last, job.reason()));
            }
            read_job(clients, job, *price, settings, &mut answers).await?;
        }
        by_judge.push(BatchAnswers {
            answers: Mutex::new(answers),
            jobs,
        });
    }
    Ok(BatchVerdicts { by_judge })
}

async fn read_job(
    clients: &BatchClients,
    job: &JobState,
    price: Option<BatchPrice>,
    settings: &BatchSettings,
    answers: &mut HashMap<(usize, usize), Result<ExternalAnswer, String>>,
) -> Result<(), BatchError> {
    let Some((bucket, prefix)) = job
        .output_uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
    else {
        return Err(BatchError::Setting {
            name: "batch output",
            problem: format!("`{}` is not an S3 URI", job.output_uri),
        });
    };
    let aws = |operation: String| move |message: String| BatchError::Aws { operation, message };
    let keys = clients
        .list(bucket, prefix, ".jsonl.out", MAX_OUTPUT_OBJECTS)
        .await
        .map_err(aws(format!("ListObjectsV2 {}", job.output_uri)))?;
    for key in keys {
        let uri = format!("s3://{bucket}/{key}");
        let mut body = clients
            .get(bucket, &key)
            .await
            .map_err(aws(format!("GetObject {uri}")))?;
        let mut pending: Vec<u8> = Vec::new();
        let mut line_no = 0;
        loop {
            let next = body
                .next()
                .await
                .transpose()
                .map_err(|error| BatchError::Aws {
                    operation: format!("GetObject {uri}"),
                    message: error.to_string(),
                })?;
            let at_end = next.is_none();
            if let Some(bytes) = next {
                pending.extend_from_slice(&bytes);
            }
            let mut start = 0;
            while let Some(offset) = pending[start..].iter().position(|byte| *byte == b'\n') {
                line_no += 1;
                take_line(
                    &pending[start..start + offset],
                    &uri,
                    line_no,
                    job,
                    price,
                    answers,
                )?;
                start += offset + 1;
            }
            pending.drain(..start);
            if pending.len() > settings.max_output_line {
                return Err(BatchError::Output {
                    uri,
                    line: line_no + 1,
                    problem: format!("the line is longer than {} bytes", settings.max_output_line),
                });
            }
            if at_end {
                if !pending.is_empty() {
                    line_no += 1;
                    take_line(&pending, &uri, line_no, job, price, answers)?;
                }
                break;
            }
        }
    }
    Ok(())
}

/// Parses one output line into the answer of its record.
fn take_line(
    line: &[u8],
    uri: &str,
    line_no: usize,
    job: &JobState,
    price: Option<BatchPrice>,
    answers: &mut HashMap<(usize, usize), Result<ExternalAnswer, String>>,
) -> Result<(), BatchError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let bad = |problem: String| BatchError::Output {
        uri: uri.to_owned(),
        line: line_no,
        problem,
    };
    let parsed: OutputLine = serde_json::from_slice(line)
        .map_err(|error| bad(format!("not an output record: {error}")))?;
    let position = chunk::parse_record_id(&parsed.record_id)
        .filter(|position| (job.first..=job.last).contains(position))
        .ok_or_else(|| {
            bad(format!(
                "`recordId` {:?} is not one of this job's records",
                parsed.record_id
            ))
        })?;
    let answer = match (parsed.model_output, parsed.error) {
        (_, Some(error)) => Err(error_message(&error)),
        (Some(output), None) => Ok(converse_answer(&output, price)),
        (None, None) => {
            Err("Bedrock batch: the output record has neither `modelOutput` nor `error`".to_owned())
        }
    };
    answers.insert((job.model_order, position), answer);
    Ok(())
}

/// Bedrock's error object as the record's error: `Bedrock batch: MESSAGE (error CODE)`.
fn error_message(error: &Value) -> String {
    let message = error
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    match error.get("errorCode") {
        Some(Value::Number(code)) => format!("Bedrock batch: {message} (error {code})"),
        Some(Value::String(code)) => format!("Bedrock batch: {message} (error {code})"),
        _ => format!("Bedrock batch: {message}"),
    }
}

/// The text and usage of a Converse response.
fn converse_answer(output: &Value, price: Option<BatchPrice>) -> ExternalAnswer {
    let text = output
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|block| block.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .unwrap_or_default();
    let tokens = |name: &str| {
        output
            .pointer(&format!("/usage/{name}"))
            .and_then(Value::as_u64)
    };
    let (input_tokens, output_tokens) = (tokens("inputTokens"), tokens("outputTokens"));
    let cost_usd = match (price, input_tokens, output_tokens) {
        (Some(price), Some(input), Some(output)) => Some(price.cost(input, output)),
        _ => None,
    };
    ExternalAnswer {
        text,
        input_tokens,
        output_tokens,
        cost_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobState {
        JobState {
            model_order: 1,
            phase: chunk::Phase::Answers,
            model: "m".into(),
            chunk: 0,
            first: 10,
            last: 20,
            records: 11,
            job_arn: "arn:aws:bedrock:us-east-1:1:model-invocation-job/x".into(),
            status: "PartiallyCompleted".into(),
            message: None,
            processed: 11,
            errors: 1,
            output_uri: "s3://b/p/".into(),
        }
    }

    #[test]
    fn output_lines_become_answers_or_errors() {
        let price = BatchPrice {
            per_1k_input: 1.0,
            per_1k_output: 2.0,
        };
        let mut answers = HashMap::new();
        let ok = br#"{"recordId":"00000000012","modelInput":{"messages":[]},"modelOutput":{"output":{"message":{"role":"assistant","content":[{"text":"Par"},{"text":"is"}]}},"usage":{"inputTokens":1000,"outputTokens":500,"totalTokens":1500}}}"#;
        let failed = br#"{"recordId":"00000000013","modelInput":{},"error":{"errorCode":400,"errorMessage":"bad request"}}"#;
        take_line(ok, "s3://b/k", 1, &job(), Some(price), &mut answers).expect("ok line");
        take_line(failed, "s3://b/k", 2, &job(), Some(price), &mut answers).expect("error line");
        assert_eq!(
            answers[&(1, 12)],
            Ok(ExternalAnswer {
                text: "Paris".into(),
                input_tokens: Some(1000),
                output_tokens: Some(500),
                cost_usd: Some(2.0),
            })
        );
        assert_eq!(
            answers[&(1, 13)],
            Err("Bedrock batch: bad request (error 400)".into())
        );
        let foreign = br#"{"recordId":"00000000099","modelOutput":{}}"#;
        let error = take_line(foreign, "s3://b/k", 3, &job(), None, &mut answers)
            .expect_err("not this job's record");
        assert!(
            error
                .to_string()
                .starts_with("s3://b/k: line 3: `recordId`"),
            "{error}"
        );
        let garbage =
            take_line(b"{nope", "s3://b/k", 4, &job(), None, &mut answers).expect_err("not JSON");
        assert!(garbage.to_string().contains("line 4"), "{garbage}");
    }

    #[test]
    fn records_without_output_fail_with_the_jobs_reason() {
        let mut stopped = job();
        stopped.status = "Stopped".into();
        let answers = BatchAnswers {
            answers: Mutex::new(HashMap::new()),
            jobs: vec![(1, 10, 20, stopped.reason())],
        };
        let missing = answers.answer(1, 15).expect("in a job");
        assert!(missing.expect_err("no output").contains("ended Stopped"),);
        assert_eq!(answers.answer(0, 15), None, "another model runs online");
        assert_eq!(answers.answer(1, 21), None, "not in a job");
    }
}
