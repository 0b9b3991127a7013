//! Metrics over the sample dataset as the engine reads it: realistic answers, their reference
//! texts from `reference_text`, and the dataset-level means.

use engine::dataset::{Dataset, reference_text};
use fmeval_scoring::metrics::{MeanAccumulator, MetricName, score_record};

use crate::dataset::squad_file;

#[test]
fn realistic_answers_on_the_squad_dataset() {
    let path = squad_file("qa.jsonl");
    let mut accumulator = MeanAccumulator::new();
    for record in Dataset::open(&path)
        .expect("opens")
        .records()
        .expect("records")
    {
        let record = record.expect("parses");
        let target = reference_text(&record, "answers", &path).expect("reference");
        let first_answer = target
            .split("<OR>")
            .next()
            .expect("one alternative")
            .to_owned();
        // A chatty answer that contains the first reference answer.
        let output = format!(" The answer is {first_answer}.\n");
        let mut scores = score_record(MetricName::QaAccuracy, &output, &target);
        scores.extend(score_record(MetricName::FactualKnowledge, &output, &target));
        accumulator.add(&scores, None);
    }
    assert_eq!(accumulator.n_records(), 20);
    assert_eq!(accumulator.mean("factual_knowledge"), Some(1.0));
    assert_eq!(accumulator.mean("exact_match_score"), Some(0.0));
    assert_eq!(accumulator.mean("recall_over_words"), Some(1.0));
    let precision = accumulator.mean("precision_over_words").expect("a mean");
    assert!(precision > 0.0 && precision < 1.0, "precision {precision}");
}
