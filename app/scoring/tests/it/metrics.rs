//! Metrics against the oracle `tests/data/metrics_oracle.jsonl`: 500 tricky pairs scored by a
//! stdlib-only Python port of METRICS.md (`tests/data/gen_metrics_oracle.py`), so Python's own
//! `lower`/`strip`/`split` are the reference. (Realistic answers over the sample dataset are
//! scored in the engine's tests, which read it.)

use fmeval_scoring::metrics::{MetricName, ScoreValue, score_record};

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
