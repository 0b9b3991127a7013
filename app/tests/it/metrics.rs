//! Metrics against two oracles: `tests/data/metrics_oracle.jsonl` (500 tricky pairs scored by a
//! stdlib-only Python port of METRICS.md, `tests/data/gen_metrics_oracle.py`, so Python's own
//! `lower`/`strip`/`split` are the reference) and realistic answers on the shared dataset.

use app::dataset::{Dataset, reference_text};
use app::metrics::{MeanAccumulator, MetricName, ScoreValue, score_record};

use crate::dataset::squad_file;

#[test]
fn matches_the_python_oracle_bit_for_bit() {
    let oracle_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics_oracle.jsonl");
    let oracle = std::fs::read_to_string(&oracle_path).expect("oracle file");
    let mut n_rows = 0;
    for (line_idx, line) in oracle.lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).expect("oracle row is JSON");
        let target = row["target"].as_str().expect("target");
        let output = row["output"].as_str().expect("output");
        for score in score_record(MetricName::QaAccuracy, output, target) {
            let expected = row["qa_accuracy"][&score.name]
                .as_f64()
                .expect("expected score");
            let ScoreValue::Float(got) = score.value else {
                panic!("qa_accuracy scores are floats")
            };
            assert_eq!(
                got.to_bits(),
                expected.to_bits(),
                "row {}: {} for output {output:?}, target {target:?}: got {got}, expected {expected}",
                line_idx + 1,
                score.name
            );
        }
        let factual = score_record(MetricName::FactualKnowledge, output, target);
        assert_eq!(
            factual[0].value,
            ScoreValue::Int(row["factual_knowledge"].as_i64().expect("expected score")),
            "row {}: factual_knowledge for output {output:?}, target {target:?}",
            line_idx + 1
        );
        n_rows += 1;
    }
    assert_eq!(n_rows, 500);
}

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
