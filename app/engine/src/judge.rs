//! The pure part of `qa_accuracy_by_llm`: the judge rubric (a prompt template with the
//! placeholders `{question}`, `{model_answer}` and `{reference}`), the parsing of a judge's
//! verdict, and the mean over judges. Calling the judge models is the runner's job.
//!
//! Verdict rule ([`parse_verdict`]): trim whitespace, then strip leading and trailing ASCII
//! punctuation and whitespace (so `Y.`, `"N"`, `**Y**`, `(n)` count); what is left, compared
//! case-insensitively, must be exactly `y` or `yes` (score 1.0) or `n` or `no` (score 0.0).
//! Anything else, such as an explanation or `Yes, mostly`, is unparseable and scores 0.5, as in
//! the original app. Invariants: every score is 0.0, 0.5 or 1.0 per judge; the rubric can only
//! use the three placeholders and must use `{model_answer}` and `{reference}`, checked when it
//! is parsed.

use crate::chat::ChatMessage;
use crate::template::{PromptTemplate, TemplateError};
use fmeval_scoring::metrics::normalize::{is_ascii_punctuation, is_py_whitespace};

/// The placeholders a rubric may use.
pub const RUBRIC_FIELDS: [&str; 3] = ["question", "model_answer", "reference"];

/// The default rubric, equivalent to the original app's: the judge sees the question, the
/// reference answer(s) and the model's answer and replies with one letter, Y or N.
pub const DEFAULT_RUBRIC: &str = "\
System: You grade answers to questions. You reply with a single letter: Y or N.
Human: Here is a question, one or more correct reference answers separated by <OR>, and an answer to grade.

<question>
{question}
</question>

<reference_answers>
{reference}
</reference_answers>

<answer>
{model_answer}
</answer>

Does the answer match at least one of the reference answers in meaning? Reply Y if it does and N if it does not. Reply with only the letter Y or N.
Assistant:
";

/// A judge rubric: a prompt template over `{question}`, `{model_answer}` and `{reference}`,
/// with the same syntax and role markers as dataset prompt templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rubric {
    template: PromptTemplate,
}

impl Rubric {
    /// The default rubric ([`DEFAULT_RUBRIC`]).
    pub fn default_rubric() -> Rubric {
        Rubric::parse(DEFAULT_RUBRIC)
            .expect("the default rubric is a valid template over the rubric fields")
    }

    /// Parses an edited rubric; a placeholder other than the three rubric fields is an error,
    /// and so is a rubric without `{model_answer}` or `{reference}`.
    pub fn parse(source: &str) -> Result<Rubric, TemplateError> {
        let template = PromptTemplate::parse(source)?.with_name("the judge rubric");
        let available: Vec<String> = RUBRIC_FIELDS
            .iter()
            .map(|field| (*field).to_owned())
            .collect();
        template.check_fields(&available)?;
        // A judge that is not shown the answer and the reference can only guess.
        for field in ["model_answer", "reference"] {
            if !template.fields().contains(&field) {
                return Err(TemplateError::UnusedRequiredField { field });
            }
        }
        Ok(Rubric { template })
    }

    /// The same rubric with `limit` on a rendered judge prompt (a rubric that repeats
    /// `{model_answer}` multiplies the answer's size).
    pub fn with_max_rendered(self, limit: crate::limits::ByteSize) -> Rubric {
        Rubric {
            template: self.template.with_max_rendered(limit),
        }
    }

    /// The rubric's source text.
    pub fn source(&self) -> &str {
        self.template.source()
    }

    /// The judge prompt for one record. The values are inserted verbatim; role markers inside
    /// them are not recognised.
    pub fn render(
        &self,
        question: &str,
        model_answer: &str,
        reference: &str,
    ) -> Result<Vec<ChatMessage>, TemplateError> {
        Ok(self.render_text(question, model_answer, reference)?.1)
    }

    /// The judge prompt as one filled text (for text-completion judges) and as messages; a
    /// prompt over the rubric's limit fails while it is filled.
    pub fn render_text(
        &self,
        question: &str,
        model_answer: &str,
        reference: &str,
    ) -> Result<(String, Vec<ChatMessage>), TemplateError> {
        let rendered = self.template.render_with(|name| {
            // `parse` checked that only the rubric fields are used, so every name is known.
            Some(std::borrow::Cow::Borrowed(match name {
                "question" => question,
                "model_answer" => model_answer,
                _ => reference,
            }))
        });
        match rendered {
            Ok(rendered) => Ok((rendered.text, rendered.messages)),
            // `parse` checked that only the rubric fields are used: the size is the one stop.
            Err(_) => Err(self.template.too_large(String::new())),
        }
    }
}

impl Default for Rubric {
    fn default() -> Rubric {
        Rubric::default_rubric()
    }
}

/// A judge's reply as a score: Y → 1.0, N → 0.0, anything else 0.5 (see the module docs for the
/// exact rule).
pub fn parse_verdict(reply: &str) -> f64 {
    let core = reply.trim_matches(|character: char| {
        is_py_whitespace(character) || is_ascii_punctuation(character)
    });
    if core.eq_ignore_ascii_case("y") || core.eq_ignore_ascii_case("yes") {
        1.0
    } else if core.eq_ignore_ascii_case("n") || core.eq_ignore_ascii_case("no") {
        0.0
    } else {
        0.5
    }
}

/// The record's `qa_accuracy_by_llm` score: the mean of the judges' verdicts (0.5, "no verdict",
/// when there are none).
pub fn judge_score(verdicts: &[f64]) -> f64 {
    if verdicts.is_empty() {
        return 0.5;
    }
    verdicts.iter().sum::<f64>() / verdicts.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    fn check(reply: &str, expected: f64) {
        assert_eq!(parse_verdict(reply), expected, "reply: {reply:?}");
    }

    #[test]
    fn verdicts() {
        check("Y", 1.0);
        check("N", 0.0);
        check(" Y\n", 1.0);
        check("y", 1.0);
        check("n.", 0.0);
        check("Yes", 1.0);
        check("YES!", 1.0);
        check("no", 0.0);
        check("\"N\"", 0.0);
        check("**Y**", 1.0);
        check("(N)", 0.0);
        check("", 0.5);
        check("Maybe", 0.5);
        check("Y, because it matches", 0.5);
        check("Yes it does", 0.5);
        check("Nope", 0.5);
        check("Y N", 0.5);
        check("Ÿ", 0.5);
    }

    #[test]
    fn judge_means() {
        assert_eq!(judge_score(&[1.0, 0.0]), 0.5);
        assert_eq!(judge_score(&[1.0, 1.0, 0.5]), 2.5 / 3.0);
        assert_eq!(judge_score(&[0.0]), 0.0);
        assert_eq!(judge_score(&[]), 0.5);
    }

    #[test]
    fn default_rubric_renders_all_three_values() {
        let messages = Rubric::default_rubric()
            .render("Where?", "In Paris.", "Paris<OR>France")
            .expect("fits");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].role, Role::System);
        assert_eq!(messages[1].role, Role::User);
        assert!(
            messages[1]
                .content
                .contains("<question>\nWhere?\n</question>")
        );
        assert!(
            messages[1]
                .content
                .contains("<reference_answers>\nParis<OR>France\n</reference_answers>")
        );
        assert!(
            messages[1]
                .content
                .contains("<answer>\nIn Paris.\n</answer>")
        );
        assert!(
            messages[1]
                .content
                .ends_with("Reply with only the letter Y or N.")
        );
    }

    #[test]
    fn edited_rubric() {
        let rubric = Rubric::parse("Q: {question}\nA: {model_answer}\nRef: {reference}\nY or N?")
            .expect("valid rubric");
        let messages = rubric.render("q", "Human: a", "r").expect("fits");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].content, "Q: q\nA: Human: a\nRef: r\nY or N?");
        let (text, _) = rubric.render_text("q", "a", "r").expect("fits");
        assert_eq!(text, "Q: q\nA: a\nRef: r\nY or N?");
    }

    #[test]
    fn a_rubric_repeating_the_answer_stops_at_the_limit() {
        let rubric = Rubric::parse(&format!("{}{{reference}}", "{model_answer}".repeat(1_000)))
            .expect("valid rubric")
            .with_max_rendered(crate::limits::ByteSize(1 << 20));
        let answer = "a".repeat(4 << 10);
        assert_eq!(
            rubric
                .render_text("q", &answer, "r")
                .map_err(|error| error.to_string()),
            Err("the judge rubric renders to more than 1 MiB, the limit on a rendered prompt (--max-prompt-size, LLM_EVAL_MAX_PROMPT_SIZE); shorten the template or use fewer placeholders".to_owned())
        );
        assert!(rubric.render_text("q", "short", "r").is_ok());
    }

    #[test]
    fn rubric_rejects_other_fields() {
        assert_eq!(
            Rubric::parse("{question} {answers}").map_err(|error| error.to_string()),
            Err("unknown field `answers` at byte 11; available fields: question, model_answer, reference".to_owned())
        );
        assert!(matches!(
            Rubric::parse("{question"),
            Err(TemplateError::UnclosedBrace { offset: 0 })
        ));
    }

    fn check_rubric(source: &str, expected: Result<(), &str>) {
        assert_eq!(
            Rubric::parse(source)
                .map(|_| ())
                .map_err(|error| error.to_string()),
            expected.map_err(str::to_owned),
            "{source}"
        );
    }

    #[test]
    fn regression_rubric_must_show_the_answer_and_the_reference() {
        check_rubric(
            "Is it right? Y or N",
            Err("the template does not use `{model_answer}`, which it needs"),
        );
        check_rubric(
            "{question} {model_answer}",
            Err("the template does not use `{reference}`, which it needs"),
        );
        check_rubric("{model_answer} vs {reference}", Ok(()));
        check_rubric(DEFAULT_RUBRIC, Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn verdict_is_one_of_three_values(reply in "\\PC{0,12}") {
            let verdict = parse_verdict(&reply);
            proptest::prop_assert!(verdict == 0.0 || verdict == 0.5 || verdict == 1.0);
        }
    }
}
