//! Classification against fmeval 1.0.3's own `convert_model_output_to_label` and scikit-learn
//! 1.9.1's dataset scores (`tests/data/gen_fmeval_extras.py`).

use fmeval_scoring::metrics::classification::{Average, ConfusionMatrix, ValidLabels};

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|item| item.as_str().expect("string").to_owned())
        .collect()
}

#[test]
fn labels_match_fmeval() {
    let mut n_rows = 0;
    for (line_idx, line) in data("labels.jsonl").lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).expect("JSON row");
        let output = row["model_output"].as_str().expect("model_output");
        let labels = ValidLabels::new(strings(&row["labels"]));
        assert_eq!(
            labels.predict(output),
            row["predicted"].as_str().expect("predicted"),
            "row {}: {output:?} with labels {}",
            line_idx + 1,
            row["labels"]
        );
        n_rows += 1;
    }
    assert_eq!(n_rows, 300);
}

#[test]
fn dataset_scores_match_scikit_learn_bit_for_bit() {
    let mut n_rows = 0;
    for (line_idx, line) in data("classification.jsonl").lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).expect("JSON row");
        let mut matrix = ConfusionMatrix::new();
        for (target, predicted) in strings(&row["y_true"]).iter().zip(strings(&row["y_pred"])) {
            matrix.add(target, &predicted);
        }
        for average in [Average::Micro, Average::Macro, Average::Weighted] {
            let scores = matrix.scores(average).expect("records");
            let expected = |key: &str| row[key].as_f64().expect("expected score");
            let checks = [
                (
                    "classification_accuracy_score",
                    scores.accuracy,
                    expected("classification_accuracy_score"),
                ),
                (
                    "balanced_accuracy_score",
                    scores.balanced_accuracy,
                    expected("balanced_accuracy_score"),
                ),
                (
                    "precision_score",
                    scores.precision,
                    expected(&format!("precision_{average}")),
                ),
                (
                    "recall_score",
                    scores.recall,
                    expected(&format!("recall_{average}")),
                ),
            ];
            for (name, got, expected) in checks {
                assert_eq!(
                    got.to_bits(),
                    expected.to_bits(),
                    "row {}: {name} ({average}): got {got}, scikit-learn {expected}",
                    line_idx + 1
                );
            }
        }
        n_rows += 1;
    }
    assert_eq!(n_rows, 60);
}
