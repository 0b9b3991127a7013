//! Metric cost per sample on realistic model outputs built from the sample squad-qa dataset.
//! Prints µs/sample; targets: qa_accuracy ≤ 2 µs, factual_knowledge ≤ 0.5 µs (fmeval: ~60 µs);
//! on 100-word outputs, classification_accuracy, summarization_accuracy (ROUGE-1/2/L) and the
//! robustness deltas ≤ 5 µs each, and the cost of perturbing one 100-word prompt five times.
//! The `score_record` lines are what the runner calls per record (all scores of the metric,
//! allocated as `Score`s); the `score_with` lines are the bare scoring with reused buffers.
//!
//! Run: `cargo bench -p fmeval-scoring --bench metrics`.

use std::hint::black_box;
use std::time::Instant;

use fmeval_scoring::metrics::classification::ValidLabels;
use fmeval_scoring::metrics::robustness::delta_scores;
use fmeval_scoring::metrics::{
    MetricName, factual_knowledge, qa_accuracy, rouge, score_classification, score_record,
};
use fmeval_scoring::perturbation::{Perturbation, Perturber};
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

/// (100-word model output, 60-word reference) pairs: the sample dataset's questions and answers
/// run together, as a chatty summary or a long classification answer would be.
fn hundred_word_samples() -> Vec<(String, String)> {
    let mut words: Vec<String> = Vec::new();
    for line in SQUAD_JSONL.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}"));
        for key in ["question", "doc"] {
            if let Some(text) = record[key].as_str() {
                words.extend(text.split(' ').map(str::to_owned));
            }
        }
    }
    (0..20)
        .map(|sample| {
            let start = (sample * 37) % words.len().saturating_sub(200).max(1);
            let output = words[start..start + 100].join(" ");
            let target = words[start + 20..start + 80].join(" ");
            (output, target)
        })
        .collect()
}

fn measure(
    name: &str,
    target_us: f64,
    samples: &[(String, String)],
    score: impl FnMut(&str, &str) -> f64,
) {
    measure_rounds(name, target_us, samples, 2_000, score);
}

fn measure_rounds(
    name: &str,
    target_us: f64,
    samples: &[(String, String)],
    n_rounds: usize,
    mut score: impl FnMut(&str, &str) -> f64,
) {
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

    let long = hundred_word_samples();
    println!(
        "\nper-record cost on {} 100-word outputs (60-word references)",
        long.len()
    );
    let labels = ValidLabels::new(["positive", "negative", "neutral"]);
    measure_rounds(
        "classification_accuracy: score_classification",
        5.0,
        &long,
        500,
        |output, target| {
            score_classification(&labels, output, target)
                .1
                .value
                .as_f64()
        },
    );
    measure_rounds(
        "summarization_accuracy: rouge::score (R-1/2/L)",
        5.0,
        &long,
        500,
        |output, target| rouge::score(output, target).rouge_l,
    );
    measure_rounds(
        "summarization_accuracy: score_record",
        5.0,
        &long,
        500,
        |output, target| {
            score_record(MetricName::SummarizationAccuracy, output, target)[0]
                .value
                .as_f64()
        },
    );
    let perturbed_scores: Vec<_> = (0..5)
        .map(|index| score_record(MetricName::QaAccuracy, &long[index].0, &long[0].1))
        .collect();
    // The robustness metric's own work beyond its base metric (scored above or in the first
    // section): the five deltas of five perturbed answers' scores.
    let originals: Vec<_> = long
        .iter()
        .map(|(output, target)| score_record(MetricName::QaAccuracy, output, target))
        .collect();
    let mut next = 0;
    measure_rounds(
        "qa_accuracy_semantic_robustness: delta_scores",
        5.0,
        &long,
        500,
        |_, _| {
            next = (next + 1) % originals.len();
            delta_scores(&originals[next], &perturbed_scores)[0]
                .value
                .as_f64()
        },
    );
    for kind in Perturbation::ALL {
        let mut perturber = Perturber::new(kind);
        measure_rounds(
            &format!("perturb 5× ({kind})"),
            20.0,
            &long,
            200,
            |output, _| perturber.perturb(output)[0].len() as f64,
        );
    }
}
