//! The sample dataset shipped with the project: twenty SQuAD question-answering records
//! (`app/data/squad-qa/`, CC BY-SA 4.0; attribution and licence in that folder's README and
//! LICENSE). The files are embedded in the binary, so the app can offer them without any file
//! beside it; tests and benchmarks read the same files from the source tree.

/// Folder of the sample dataset in the source tree (for tests and benchmarks; a deployed binary
/// uses the embedded copies below).
pub const SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/squad-qa");

/// `qa.jsonl`: fields `doc`, `doc_id`, `question`, `question_id`, `answers` (a list).
pub const QA_JSONL: &[u8] = include_bytes!("../../data/squad-qa/qa.jsonl");

/// `qa.csv`: columns `Question`, `Reference Answer(s)`, `Source Doc ID`.
pub const QA_CSV: &[u8] = include_bytes!("../../data/squad-qa/qa.csv");

/// The attribution shown next to the sample wherever it is offered.
pub const ATTRIBUTION: &str = "SQuAD (Stanford Question Answering Dataset), CC BY-SA 4.0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_copies_are_the_source_files() {
        let dir = std::path::Path::new(SOURCE_DIR);
        assert_eq!(
            std::fs::read(dir.join("qa.jsonl")).expect("qa.jsonl reads"),
            QA_JSONL
        );
        assert_eq!(
            std::fs::read(dir.join("qa.csv")).expect("qa.csv reads"),
            QA_CSV
        );
        assert!(dir.join("LICENSE").is_file() && dir.join("README.md").is_file());
    }
}
