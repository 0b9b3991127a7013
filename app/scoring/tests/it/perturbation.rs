//! The perturbations against fmeval 1.0.3's own transforms run on numpy 2.4.6
//! (`tests/data/gen_fmeval_extras.py`): one stream per type continued over ten texts (Unicode
//! case mappings, whitespace of every kind, empty and one-character texts), and the tail
//! shuffle numpy uses above 10,000 characters.

use fmeval_scoring::perturbation::{Perturbation, Perturber};

fn data(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn streams_match_fmeval_over_many_records() {
    let oracle = data("perturbations.json");
    let texts = oracle["texts"].as_array().expect("texts");
    for kind in Perturbation::ALL {
        let mut perturber = Perturber::new(kind);
        let expected = oracle["perturbed"][kind.as_str()].as_array().expect("type");
        assert_eq!(expected.len(), texts.len());
        for (text, expected) in texts.iter().zip(expected) {
            let text = text.as_str().expect("text");
            let got = perturber.perturb(text);
            let expected: Vec<&str> = expected
                .as_array()
                .expect("five texts")
                .iter()
                .map(|item| item.as_str().expect("text"))
                .collect();
            assert_eq!(got, expected, "{kind} of {text:?}");
        }
    }
}

#[test]
fn random_upper_case_of_long_texts() {
    let oracle = data("upper_long.json");
    for n in [10_000usize, 10_007] {
        let text = "a".repeat(n);
        let mut perturber = Perturber::new(Perturbation::RandomUpperCase);
        let expected = oracle[n.to_string()].as_array().expect("five lists");
        for (got, expected) in perturber.perturb(&text).iter().zip(expected) {
            let positions: Vec<usize> = got
                .char_indices()
                .filter(|(_, character)| *character == 'A')
                .map(|(position, _)| position)
                .collect();
            assert_eq!(positions.len(), n / 10);
            let expected: Vec<usize> = expected
                .as_array()
                .expect("positions")
                .iter()
                .map(|value| value.as_u64().expect("position") as usize)
                .collect();
            // The first 50 positions, then the sum of all of them.
            assert_eq!(positions[..50], expected[..50], "{n} characters");
            assert_eq!(
                positions.iter().sum::<usize>(),
                expected[50],
                "{n} characters"
            );
        }
    }
}
