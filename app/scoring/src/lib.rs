//! `fmeval-scoring`: the evaluation scores of AWS's fmeval 1.0.3, reproduced bit for bit in pure
//! Rust, for any project that wants fmeval's numbers without Python, Ray or a model download.
//!
//! - [`metrics`]: `qa_accuracy` (exact match, quasi-exact match, precision, recall and F1 over
//!   words) and `factual_knowledge`, the text normalisation they share, dataset-level means
//!   (overall and per category);
//! - [`metrics::classification`], [`metrics::rouge`], [`metrics::robustness`]:
//!   `classification_accuracy` (labels, confusion matrix, scikit-learn's dataset scores),
//!   `summarization_accuracy` (ROUGE-1/2/L with NLTK's Porter stemmer) and the `delta_*` scores
//!   of semantic robustness;
//! - [`perturbation`] over [`pcg64`]: fmeval's three perturbations, drawn from numpy's PCG64
//!   exactly; [`numpy`]: numpy's pairwise float sums;
//! - [`sample`]: fmeval's record sampling (numpy's `RandomState(seed).permutation`, exactly);
//! - [`python`]: Python's `str()` of JSON values and `repr(float)`, which fmeval's outputs use.
//!
//! The rules are written down in `app/METRICS.md`, read from fmeval's source and checked against
//! values fmeval computed.
//!
//! ```
//! use fmeval_scoring::metrics::{MetricName, ScoreValue, score_record};
//!
//! // The target's alternatives are joined with `<OR>`, as fmeval reads them.
//! let scores = score_record(MetricName::QaAccuracy, "It is Paris.", "Paris<OR>the city of Paris");
//! assert_eq!(scores[0].name, "f1_score");
//! assert_eq!(scores[0].value, ScoreValue::Float(0.5));
//! let found = score_record(MetricName::FactualKnowledge, "It is Paris.", "paris");
//! assert_eq!(found[0].value, ScoreValue::Int(1));
//! ```
//!
//! **Architecture invariant:** this crate is pure and synchronous: no IO, no async runtime, no
//! AWS, no clock and no randomness beyond an explicit seed (it depends on `serde`,
//! `serde_json` and `thiserror` only), because scores must be the same on every machine and
//! reusable from any program; the engine that calls models and the store that keeps rows are
//! built on it, never the reverse.

pub mod metrics;
pub mod numpy;
pub mod pcg64;
pub mod perturbation;
pub mod python;
pub mod sample;
