//! Metric cost per sample on realistic model outputs built from the sample squad-qa dataset.
//! Prints µs/sample; targets: qa_accuracy ≤ 2 µs, factual_knowledge ≤ 0.5 µs (fmeval: ~60 µs).
//! The `score_record` lines are what the runner calls per record (all scores of the metric,
//! allocated as `Score`s); the `score_with` lines are the bare scoring with reused buffers.
//!
//! Run: `cargo bench -p fmeval-scoring --bench metrics`.

use std::hint::black_box;
use std::time::Instant;

use fmeval_scoring::metrics::{MetricName, factual_knowledge, qa_accuracy, score_record};
use fmeval_scoring::python::python_str;

/// The sample dataset shipped in the repository (`app/data/squad-qa`).
const SQUAD_JSONL: &str = include_str!("../../data/squad-qa/qa.jsonl");

/// (model output, target) pairs shaped like real answers: short, chatty, wrong, non-ASCII.
fn samples() -> Vec<(String, String)> {
    let mut samples = Vec::new();
    for line in SQUAD_JSONL.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}"));
        // The reference as fmeval's target: the answers joined with `<OR>`.
        let target = record["answers"]
            .as_array()
            .map(|answers| answers.iter().map(|answer| python_str(answer).into_owned()))
            .map(|answers| answers.collect::<Vec<_>>().join("<OR>"))
            .unwrap_or_else(|| python_str(&record["answers"]).into_owned());
        let first = target.split("<OR>").next().unwrap_or_default().to_owned();
        let question = record["question"].as_str().unwrap_or_default().to_owned();
        samples.push((first.clone(), target.clone()));
        samples.push((format!("The answer is {first}."), target.clone()));
        samples.push((
            format!(" Based on the context, {first}. The passage says: \"{question}\" and the answer is clearly {first}, as stated in the text.\n"),
            target.clone(),
        ));
        samples.push((
            "I don't know the answer to that question.".to_owned(),
            target.clone(),
        ));
        samples.push((format!("Réponse : « {first} » — c’est ça."), target));
    }
    samples
}

fn measure(
    name: &str,
    target_us: f64,
    samples: &[(String, String)],
    mut score: impl FnMut(&str, &str) -> f64,
) {
    let n_rounds = 2_000;
    // Warm up.
    for (output, target) in samples {
        black_box(score(output, target));
    }
    let start = Instant::now();
    let mut checksum = 0.0;
    for _ in 0..n_rounds {
        for (output, target) in samples {
            checksum += score(black_box(output), black_box(target));
        }
    }
    let elapsed = start.elapsed();
    let n_samples = n_rounds * samples.len();
    let us_per_sample = elapsed.as_secs_f64() * 1e6 / n_samples as f64;
    println!(
        "{name:<46} {us_per_sample:>6.3} µs/sample (target ≤ {target_us} µs)  [{n_samples} samples, checksum {checksum:.3}]"
    );
}

fn main() {
    let samples = samples();
    println!(
        "metric cost on {} realistic samples from squad-qa",
        samples.len()
    );
    let mut qa_scratch = qa_accuracy::Scratch::default();
    measure(
        "qa_accuracy: score_with (reused buffers)",
        2.0,
        &samples,
        |output, target| qa_accuracy::score_with(output, target, &mut qa_scratch).f1,
    );
    let mut fk_scratch = factual_knowledge::Scratch::default();
    measure(
        "factual_knowledge: score_with (reused buffers)",
        0.5,
        &samples,
        |output, target| factual_knowledge::score_with(output, target, &mut fk_scratch) as f64,
    );
    measure(
        "qa_accuracy: score_record (runner path)",
        2.0,
        &samples,
        |output, target| {
            score_record(MetricName::QaAccuracy, output, target)[0]
                .value
                .as_f64()
        },
    );
    measure(
        "factual_knowledge: score_record (runner path)",
        0.5,
        &samples,
        |output, target| {
            score_record(MetricName::FactualKnowledge, output, target)[0]
                .value
                .as_f64()
        },
    );
}
