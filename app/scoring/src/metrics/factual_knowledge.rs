//! fmeval 1.0.3 `factual_knowledge`: the integer 1 when, for at least one `<OR>` alternative,
//! `lower(alternative)` is a substring of `lower(model_output)`, else 0 (METRICS.md section 3).
//!
//! Invariants: no strip, no normalization, no word boundaries; an empty alternative matches
//! everything; a [`Scratch`] reused across samples keeps scoring allocation-free on ASCII text.

use crate::metrics::normalize::{TARGET_DELIMITER, alternatives, lower_into};

/// Reusable buffers for [`score_with`].
#[derive(Debug, Default)]
pub struct Scratch {
    output_lower: String,
    alternative_lower: String,
}

/// Scores one sample (allocates its buffers; see [`score_with`] to reuse them).
pub fn score(model_output: &str, target: &str) -> i64 {
    score_with(model_output, target, &mut Scratch::default())
}

/// Scores one sample using `scratch` for the lowercased text.
pub fn score_with(model_output: &str, target: &str, scratch: &mut Scratch) -> i64 {
    // An empty alternative is a substring of everything: no need to lowercase anything.
    if target.is_empty()
        || target.starts_with(TARGET_DELIMITER)
        || target.ends_with(TARGET_DELIMITER)
        || target.contains("<OR><OR>")
    {
        return 1;
    }
    lower_into(model_output, &mut scratch.output_lower);
    for alternative in alternatives(target) {
        lower_into(alternative, &mut scratch.alternative_lower);
        if scratch
            .output_lower
            .contains(scratch.alternative_lower.as_str())
        {
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str, model_output: &str, expected: i64) {
        assert_eq!(
            score(model_output, target),
            expected,
            "target {target:?}, output {model_output:?}"
        );
    }

    #[test]
    fn examples_of_metrics_md_3() {
        check("8", "18", 1);
        check("cat", "concatenate", 1);
        check("", "anything", 1);
        check("France<OR>", "no", 1);
        check("<OR>", "no", 1);
        check("<OR>", "", 1);
        check("a<OR><OR>b", "zzz", 1);
    }

    #[test]
    fn case_insensitive_substring() {
        check("France", "It is in FRANCE.", 1);
        check("October 1973<OR>October<OR>1973", "It began in 1973", 1);
        check("Paris<or>London", "paris", 0);
        check("Paris<or>London", "Paris<OR>London", 1);
        check("Germany", "France", 0);
        check("ΟΔΟΣ", "η οδος", 1);
        check("Straße", "STRASSE", 0);
        check("İ", "i\u{307}", 1);
    }

    #[test]
    fn nothing_is_stripped_or_normalized() {
        check(" Paris", "Paris", 0);
        check("U.S.", "US", 0);
        check("New York", "New  York", 0);
        check("New\u{a0}York", "new\u{a0}york city", 1);
    }

    proptest::proptest! {
        #[test]
        fn output_containing_the_target_scores_one(prefix in "\\PC{0,10}", target in "[a-zA-Z0-9 ]{0,10}", suffix in "\\PC{0,10}") {
            let output = format!("{prefix}{target}{suffix}");
            proptest::prop_assert_eq!(score(&output, &target), 1);
        }

        #[test]
        fn score_is_zero_or_one(output in "\\PC{0,20}", target in "\\PC{0,20}") {
            proptest::prop_assert!(matches!(score(&output, &target), 0 | 1));
        }
    }
}
