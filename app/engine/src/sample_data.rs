//! The sample datasets shipped with the project: twenty SQuAD question-answering records
//! (`app/data/squad-qa/`, CC BY-SA 4.0; attribution and licence in that folder's README and
//! LICENSE), twenty-four labelled product reviews for classification
//! (`app/data/reviews-classification/`) and eight articles with reference summaries
//! (`app/data/news-summarization/`), both written for this repository (MIT-0). The files are
//! embedded in the binary, so the app can offer them without any file beside it; tests and
//! benchmarks read the same files from the source tree.

/// Folder of the sample dataset in the source tree (for tests and benchmarks; a deployed binary
/// uses the embedded copies below).
pub const SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/squad-qa");

/// `qa.jsonl`: fields `doc`, `doc_id`, `question`, `question_id`, `answers` (a list).
pub const QA_JSONL: &[u8] = include_bytes!("../../data/squad-qa/qa.jsonl");

/// `qa.csv`: columns `Question`, `Reference Answer(s)`, `Source Doc ID`.
pub const QA_CSV: &[u8] = include_bytes!("../../data/squad-qa/qa.csv");

/// The attribution shown next to the sample wherever it is offered.
pub const ATTRIBUTION: &str = "SQuAD (Stanford Question Answering Dataset), CC BY-SA 4.0";

/// `reviews.jsonl`: fields `id`, `text`, `label` (positive, negative, neutral), `category`.
pub const REVIEWS_JSONL: &[u8] = include_bytes!("../../data/reviews-classification/reviews.jsonl");

/// `news.jsonl`: fields `id`, `document`, `summary`, `category`.
pub const NEWS_JSONL: &[u8] = include_bytes!("../../data/news-summarization/news.jsonl");

/// One sample dataset the app offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Its name (the folder under `app/data/`).
    pub name: &'static str,
    /// The dataset's name once added.
    pub file_name: &'static str,
    /// The JSON Lines bytes.
    pub jsonl: &'static [u8],
    /// What it is, for the page that offers it.
    pub description: &'static str,
    /// Where it comes from and its licence.
    pub attribution: &'static str,
}

/// Every sample dataset, question answering first.
pub const SAMPLES: [Sample; 3] = [
    Sample {
        name: "squad-qa",
        file_name: "squad-qa.jsonl (sample)",
        jsonl: QA_JSONL,
        description: "20 question-answering records (reference field `answers`)",
        attribution: ATTRIBUTION,
    },
    Sample {
        name: "reviews-classification",
        file_name: "reviews-classification.jsonl (sample)",
        jsonl: REVIEWS_JSONL,
        description: "24 product reviews labelled positive, negative or neutral, in 3 categories (reference field `label`, category field `category`)",
        attribution: "written for this project, MIT-0",
    },
    Sample {
        name: "news-summarization",
        file_name: "news-summarization.jsonl (sample)",
        jsonl: NEWS_JSONL,
        description: "8 short articles with a reference summary (reference field `summary`, category field `category`)",
        attribution: "written for this project, MIT-0",
    },
];

/// The sample called `name`.
pub fn sample(name: &str) -> Option<&'static Sample> {
    SAMPLES.iter().find(|sample| sample.name == name)
}

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
        let data = dir.parent().expect("app/data");
        for sample in &SAMPLES {
            let folder = data.join(sample.name);
            let file = std::fs::read_dir(&folder)
                .expect("sample folder")
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
                .expect("a .jsonl file");
            assert_eq!(
                std::fs::read(&file).expect("reads"),
                sample.jsonl,
                "{}",
                sample.name
            );
            assert!(folder.join("LICENSE").is_file() && folder.join("README.md").is_file());
        }
        assert_eq!(
            sample("news-summarization").map(|s| s.jsonl),
            Some(NEWS_JSONL)
        );
        assert_eq!(sample("nope"), None);
    }
}
