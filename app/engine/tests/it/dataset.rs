//! Datasets end to end: the sample squad-qa files, encodings and line ends, errors that name the
//! file and line, fmeval's sample order, and streaming a large file.

use std::io::Write;
use std::path::{Path, PathBuf};

use engine::dataset::{Dataset, DatasetError, Format, reference_text};
use fmeval_scoring::sample::{DEFAULT_SEED, Selection, selected_indices};

/// A file of the sample squad-qa dataset shipped in the repository.
pub fn squad_file(name: &str) -> PathBuf {
    crate::helpers::squad_dir().join(name)
}

fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("create test file");
    file.write_all(content).expect("write test file");
    path
}

fn messages(dataset: &Dataset) -> Vec<String> {
    dataset
        .records()
        .expect("dataset opens")
        .map(|item| match item {
            Ok(record) => format!("{}@{}", record.index, record.line),
            Err(error) => format!("error: {error}"),
        })
        .collect()
}

#[test]
fn squad_jsonl_reads_all_records_in_order() {
    let path = squad_file("qa.jsonl");
    let dataset = Dataset::open(&path).expect("dataset opens");
    assert_eq!(dataset.format(), Format::JsonLines);
    assert_eq!(
        dataset.field_names().expect("field names"),
        ["doc", "doc_id", "question", "question_id", "answers"]
    );
    assert_eq!(dataset.count().expect("count"), 20);
    let records: Vec<_> = dataset
        .records()
        .expect("records")
        .collect::<Result<_, _>>()
        .expect("all records parse");
    assert_eq!(records.len(), 20);
    for (position, record) in records.iter().enumerate() {
        assert_eq!((record.index, record.line), (position, position + 1));
    }
    assert_eq!(
        reference_text(&records[0], "answers", &path).expect("reference"),
        "France"
    );
    assert_eq!(
        reference_text(&records[8], "answers", &path).expect("reference"),
        "October 1973<OR>October<OR>1973"
    );
    assert_eq!(
        reference_text(&records[7], "answers", &path).expect("reference"),
        "8"
    );
}

#[test]
fn squad_csv_reads_all_records() {
    let path = squad_file("qa.csv");
    let dataset = Dataset::open(&path).expect("dataset opens");
    assert_eq!(dataset.format(), Format::Csv);
    assert_eq!(
        dataset.field_names().expect("field names"),
        ["Question", "Reference Answer(s)", "Source Doc ID"]
    );
    assert_eq!(dataset.count().expect("count"), 20);
    let first = dataset
        .records()
        .expect("records")
        .next()
        .expect("a record")
        .expect("parses");
    assert_eq!((first.index, first.line), (0, 2));
    assert_eq!(
        first.fields["Question"],
        "In what country is Normandy located?"
    );
    assert_eq!(
        reference_text(&first, "Reference Answer(s)", &path).expect("reference"),
        "France"
    );
}

#[test]
fn bom_and_crlf_give_the_same_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = std::fs::read_to_string(squad_file("qa.jsonl")).expect("read dataset");
    let converted = format!(
        "\u{feff}{}\r\n\r\n",
        original.trim_end().replace('\n', "\r\n")
    );
    let path = write_file(dir.path(), "crlf.jsonl", converted.as_bytes());
    let expected: Vec<_> = Dataset::open(&squad_file("qa.jsonl"))
        .expect("opens")
        .records()
        .expect("records")
        .map(|record| record.expect("parses").fields)
        .collect();
    let got: Vec<_> = Dataset::open(&path)
        .expect("opens")
        .records()
        .expect("records")
        .map(|record| record.expect("parses").fields)
        .collect();
    assert_eq!(got, expected);

    let csv = std::fs::read_to_string(squad_file("qa.csv")).expect("read dataset");
    let csv_path = write_file(
        dir.path(),
        "crlf.csv",
        format!(
            "\u{feff}{}",
            csv.replace("\r\n", "\n").replace('\n', "\r\n")
        )
        .as_bytes(),
    );
    let dataset = Dataset::open(&csv_path).expect("opens");
    assert_eq!(dataset.field_names().expect("field names")[0], "Question");
    assert_eq!(messages(&dataset)[..3], ["0@2", "1@3", "2@4"]);
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_file(
        dir.path(),
        "bad.jsonl",
        b"{\"q\": 1}\n{\"q\": \n[1]\n\n{\"q\": 2}\n\n",
    );
    let shown = path.display().to_string();
    assert_eq!(
        messages(&Dataset::open(&path).expect("opens")),
        [
            "0@1".to_owned(),
            format!("error: {shown}:2: invalid JSON at column 6: EOF while parsing a value"),
            format!("error: {shown}:3: expected a JSON object, found an array"),
            "3@5".to_owned(),
        ]
    );
    let missing = dir.path().join("missing.jsonl");
    let error = Dataset::open(&missing).expect_err("a missing file is an error");
    assert!(matches!(error, DatasetError::Io { .. }));
    assert_eq!(
        error.to_string(),
        format!("{}: cannot read the dataset", missing.display())
    );
}

#[test]
fn format_is_sniffed_without_a_known_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jsonl = write_file(dir.path(), "data.txt", b"{\"a\": 1}\n");
    assert_eq!(
        Dataset::open(&jsonl).expect("opens").format(),
        Format::JsonLines
    );
    let csv = write_file(dir.path(), "data", b"a,b\n1,2\n");
    assert_eq!(Dataset::open(&csv).expect("opens").format(), Format::Csv);
}

#[test]
fn fmeval_sample_order_on_the_squad_dataset() {
    let dataset = Dataset::open(&squad_file("qa.jsonl")).expect("opens");
    let count = dataset.count().expect("count");
    let order = selected_indices(
        &Selection::Sample {
            n: 100,
            seed: DEFAULT_SEED,
        },
        count,
    )
    .expect("a sample");
    assert_eq!(
        order,
        [
            3, 13, 2, 16, 14, 5, 4, 0, 8, 18, 17, 11, 10, 9, 7, 1, 19, 12, 6, 15
        ]
    );
    let records: Vec<_> = dataset
        .records()
        .expect("records")
        .collect::<Result<_, _>>()
        .expect("parses");
    assert_eq!(records[order[0]].fields["doc_id"], "Sky_(United_Kingdom)");
}

#[test]
fn streams_100000_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for record_idx in 0..100_000 {
        writeln!(
            file,
            "{{\"question\": \"q{record_idx}\", \"answers\": [\"a{record_idx}\", \"b\"]}}"
        )
        .expect("write");
    }
    file.flush().expect("flush");
    drop(file);
    let dataset = Dataset::open(&path).expect("opens");
    assert_eq!(dataset.count().expect("count"), 100_000);
    let mut n_records = 0;
    for record in dataset.records().expect("records") {
        let record = record.expect("parses");
        assert_eq!(record.index, n_records);
        n_records += 1;
    }
    assert_eq!(n_records, 100_000);
}

fn check_field_names(content: &[u8], expected: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_file(dir.path(), "fields.jsonl", content);
    let names = Dataset::open(&path)
        .expect("opens")
        .field_names()
        .expect("field names");
    assert_eq!(names, expected, "{}", String::from_utf8_lossy(content));
}

#[test]
fn regression_field_names_look_past_a_broken_or_sparse_first_record() {
    check_field_names(
        b"{\"q\": tru}\n{\"q\": \"x\", \"answers\": [\"a\"]}\n",
        &["q", "answers"],
    );
    check_field_names(
        b"{\"q\": \"x\"}\n{\"q\": \"y\", \"answers\": \"a\"}\n",
        &["q", "answers"],
    );
    check_field_names(
        b"[1]\n\n{\"b\": 1, \"a\": 2}\n{\"c\": 3}\n",
        &["b", "a", "c"],
    );
    check_field_names(b"", &[]);
}
