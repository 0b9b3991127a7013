//! ROUGE and the Porter stemmer against `rouge_score` 0.1.2 and NLTK 3.9.1 themselves
//! (`tests/data/gen_fmeval_extras.py`): 308 pairs and 4,012 words, bit for bit.

use fmeval_scoring::metrics::{porter, rouge};

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn porter_matches_nltk() {
    let mut n_words = 0;
    let mut wrong = Vec::new();
    for line in data("porter.tsv")
        .lines()
        .filter(|line| !line.starts_with('#'))
    {
        let (word, expected) = line.split_once('\t').expect("word<TAB>stem");
        if porter::stem(word) != expected {
            wrong.push(format!(
                "{word}: got {}, NLTK {expected}",
                porter::stem(word)
            ));
        }
        n_words += 1;
    }
    assert!(n_words > 4_000, "{n_words} words");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn rouge_matches_rouge_score_bit_for_bit() {
    let mut n_pairs = 0;
    for (line_idx, line) in data("rouge.jsonl").lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).expect("JSON row");
        let output = row["model_output"].as_str().expect("model_output");
        let target = row["target"].as_str().expect("target");
        let scores = rouge::score(output, target);
        for (name, got) in scores.named() {
            let expected = row[name].as_f64().expect("expected score");
            assert_eq!(
                got.to_bits(),
                expected.to_bits(),
                "row {}: {name} of {output:?} against {target:?}: got {got}, expected {expected}",
                line_idx + 1
            );
        }
        n_pairs += 1;
    }
    assert_eq!(n_pairs, 308);
}
