//! Prompt templates on the shared dataset: the workshop template, field checks before any model
//! call, and CSV column names as placeholders.

use engine::chat::Role;
use engine::dataset::Dataset;
use engine::template::{PromptTemplate, TemplateError};

use crate::dataset::squad_file;

const WORKSHOP_TEMPLATE: &str = "Human:\n<context>\n{doc}\n</context>\n\n<question>\n{question}\n</question>\n\nAnswer the question as if you were a student taking a test.\n\nAssistant:\n";

#[test]
fn workshop_template_preview_of_the_first_record() {
    let dataset = Dataset::open(&squad_file("qa.jsonl")).expect("opens");
    let template = PromptTemplate::parse(WORKSHOP_TEMPLATE).expect("valid template");
    template
        .check_fields(&dataset.field_names().expect("field names"))
        .expect("fields exist");
    let first = dataset
        .records()
        .expect("records")
        .next()
        .expect("a record")
        .expect("parses");
    let rendered = template.render(&first).expect("renders");
    assert_eq!(rendered.messages.len(), 1);
    assert_eq!(rendered.messages[0].role, Role::User);
    assert!(rendered.text.starts_with("Human:\n<context>\nThe Normans"));
    assert!(rendered.text.ends_with("<question>\nIn what country is Normandy located?\n</question>\n\nAnswer the question as if you were a student taking a test.\n\nAssistant:\n"));
    insta::assert_json_snapshot!(
        serde_json::json!({ "text": rendered.text, "messages": rendered.messages })
    );
}

#[test]
fn system_and_user_messages() {
    let dataset = Dataset::open(&squad_file("qa.jsonl")).expect("opens");
    let template =
        PromptTemplate::parse("System: Answer in a few words.\nHuman: {question}\nAssistant:")
            .expect("valid template");
    let record = dataset
        .records()
        .expect("records")
        .nth(4)
        .expect("a record")
        .expect("parses");
    let rendered = template.render(&record).expect("renders");
    insta::assert_json_snapshot!(rendered.messages);
}

#[test]
fn unknown_field_is_reported_before_any_call() {
    let dataset = Dataset::open(&squad_file("qa.jsonl")).expect("opens");
    let template =
        PromptTemplate::parse("Human: {doc}\n{Question}\nAssistant:").expect("valid template");
    let error = template
        .check_fields(&dataset.field_names().expect("field names"))
        .expect_err("unknown field");
    assert_eq!(
        error.to_string(),
        "unknown field `Question` at byte 13; available fields: doc, doc_id, question, question_id, answers"
    );
}

#[test]
fn csv_columns_as_placeholders() {
    let dataset = Dataset::open(&squad_file("qa.csv")).expect("opens");
    let template = PromptTemplate::parse("Question: {Question}\nAnswer:").expect("valid template");
    template
        .check_fields(&dataset.field_names().expect("field names"))
        .expect("fields exist");
    let rendered = template
        .render(
            &dataset
                .records()
                .expect("records")
                .next()
                .expect("a record")
                .expect("parses"),
        )
        .expect("renders");
    assert_eq!(
        rendered.text,
        "Question: In what country is Normandy located?\nAnswer:"
    );
}

#[test]
fn missing_field_in_one_record_is_a_record_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("d.jsonl");
    std::fs::write(&path, "{\"q\": \"a\"}\n{\"other\": 1}\n").expect("write");
    let template = PromptTemplate::parse("{q}").expect("valid template");
    let results: Vec<_> = Dataset::open(&path)
        .expect("opens")
        .records()
        .expect("records")
        .map(|record| template.render(&record.expect("parses")))
        .collect();
    assert!(results[0].is_ok());
    assert_eq!(
        results[1],
        Err(TemplateError::MissingField {
            field: "q".to_owned(),
            index: 1,
            line: 2
        })
    );
}
