//! fmeval 1.0.3 `summarization_accuracy`'s ROUGE-1, ROUGE-2 and ROUGE-L F-measures, as Google's
//! `rouge_score` (through HF `evaluate`, one pair at a time) computes them with
//! `use_stemmer=True` (METRICS.md section 5).
//!
//! Tokenizer: Python `lower()`, every run of characters outside `[a-z0-9]` is a separator (so a
//! non-ASCII letter splits a word: `café` gives `caf`), NLTK's Porter stemmer on tokens longer
//! than 3 characters. ROUGE-N counts n-grams as multisets; ROUGE-L is the longest common
//! subsequence of the token lists (computed bit-parallel, the same length as `rouge_score`'s
//! table). The target is used whole (no `<OR>` split). METEOR and BERTScore are not computed
//! (they need NLTK's WordNet and a 1.5 GB model).
//!
//! Invariants: pure; bit-for-bit `rouge_score`'s F (`2·p·r / (p + r)`, 0 when both are 0);
//! every score in [0, 1]. Depends only on [`super::porter`].

use std::collections::HashMap;

use super::porter;

/// The three F-measures of one (model output, target) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RougeScores {
    /// `rouge1`: unigram overlap.
    pub rouge1: f64,
    /// `rouge2`: bigram overlap.
    pub rouge2: f64,
    /// `rougeL`: longest common subsequence.
    pub rouge_l: f64,
}

impl RougeScores {
    /// The scores with their names, in output order.
    pub fn named(&self) -> [(&'static str, f64); 3] {
        [
            ("rouge1", self.rouge1),
            ("rouge2", self.rouge2),
            ("rougeL", self.rouge_l),
        ]
    }
}

/// `rouge_score`'s tokens of `text`: lowercased, split on anything outside `[a-z0-9]`, tokens
/// longer than 3 characters Porter-stemmed.
pub fn tokenize(text: &str) -> Vec<String> {
    let lowered;
    let text = if text.is_ascii() {
        text
    } else {
        // Python's `lower()`: the Kelvin sign becomes `k`, `İ` becomes `i` + U+0307.
        lowered = text.to_lowercase();
        lowered.as_str()
    };
    text.split(|character: char| {
        !(character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || character.is_ascii_uppercase())
    })
    .filter(|piece| !piece.is_empty())
    .map(|piece| {
        let piece = piece.to_ascii_lowercase();
        if piece.len() > 3 {
            porter::stem(&piece)
        } else {
            piece
        }
    })
    .collect()
}

/// `text`'s tokens, each as an id in `ids` (new tokens get the next id); `lowered` and `stem`
/// are reusable buffers.
fn token_ids(
    text: &str,
    ids: &mut HashMap<Vec<u8>, u32, FxBuild>,
    lowered: &mut String,
    stem: &mut Vec<u8>,
) -> Vec<u32> {
    let bytes = if text.is_ascii() {
        text.as_bytes()
    } else {
        // Python's `lower()`: the Kelvin sign becomes `k`, `İ` becomes `i` + U+0307.
        lowered.clear();
        lowered.push_str(&text.to_lowercase());
        lowered.as_bytes()
    };
    let mut out = Vec::with_capacity(bytes.len() / 5 + 1);
    let mut piece: Vec<u8> = Vec::with_capacity(32);
    let mut flush = |piece: &mut Vec<u8>, out: &mut Vec<u32>| {
        if piece.is_empty() {
            return;
        }
        let token: &[u8] = if piece.len() > 3 {
            porter::stem_into(piece, stem);
            stem
        } else {
            piece
        };
        let next = ids.len() as u32;
        let id = match ids.get(token) {
            Some(id) => *id,
            None => {
                ids.insert(token.to_vec(), next);
                next
            }
        };
        out.push(id);
        piece.clear();
    };
    for byte in bytes {
        if byte.is_ascii_alphanumeric() {
            piece.push(byte.to_ascii_lowercase());
        } else {
            flush(&mut piece, &mut out);
        }
    }
    flush(&mut piece, &mut out);
    out
}

/// FxHash (rustc's hasher): token ids need no protection against collisions chosen by an
/// attacker (a bad text costs its own record a little time), and SipHash was a fifth of
/// ROUGE's cost.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// Scores one pair.
pub fn score(model_output: &str, target: &str) -> RougeScores {
    // Tokens as small integers, shared by both texts.
    let mut ids: HashMap<Vec<u8>, u32, FxBuild> = HashMap::with_capacity_and_hasher(
        (model_output.len() + target.len()) / 4,
        FxBuild::default(),
    );
    let (mut lowered, mut stem) = (String::new(), Vec::with_capacity(32));
    let prediction = token_ids(model_output, &mut ids, &mut lowered, &mut stem);
    let reference = token_ids(target, &mut ids, &mut lowered, &mut stem);
    let n_symbols = ids.len();

    let unigrams =
        |tokens: &[u32]| -> Vec<u64> { tokens.iter().map(|id| u64::from(*id)).collect() };
    let bigrams = |tokens: &[u32]| -> Vec<u64> {
        tokens
            .windows(2)
            .map(|pair| (u64::from(pair[0]) << 32) | u64::from(pair[1]))
            .collect()
    };
    let rouge1 = ngram_f(unigrams(&reference), unigrams(&prediction));
    let rouge2 = ngram_f(bigrams(&reference), bigrams(&prediction));
    let rouge_l = if reference.is_empty() || prediction.is_empty() {
        0.0
    } else {
        let lcs = lcs_length(&reference, &prediction, n_symbols) as f64;
        fmeasure(lcs / prediction.len() as f64, lcs / reference.len() as f64)
    };
    RougeScores {
        rouge1,
        rouge2,
        rouge_l,
    }
}

/// `rouge_score.scoring.fmeasure`.
fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// `_score_ngrams`: multiset overlap over max(count, 1).
fn ngram_f(mut target: Vec<u64>, mut prediction: Vec<u64>) -> f64 {
    target.sort_unstable();
    prediction.sort_unstable();
    let (mut i, mut j, mut overlap) = (0, 0, 0usize);
    while i < target.len() && j < prediction.len() {
        match target[i].cmp(&prediction[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                overlap += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let overlap = overlap as f64;
    let precision = overlap / prediction.len().max(1) as f64;
    let recall = overlap / target.len().max(1) as f64;
    fmeasure(precision, recall)
}

/// The length of the longest common subsequence of `a` and `b` (symbols below `n_symbols`),
/// with Hyyrö's bit-parallel recurrence `V ← (V + (V & M)) | (V & !M)` over `a`'s positions.
pub(crate) fn lcs_length(a: &[u32], b: &[u32], n_symbols: usize) -> usize {
    let n_words = a.len().div_ceil(64);
    if n_words == 0 || b.is_empty() {
        return 0;
    }
    // Position masks: bit i of symbol s's row is set when a[i] == s.
    let mut masks = vec![0u64; n_symbols * n_words];
    for (position, symbol) in a.iter().enumerate() {
        masks[*symbol as usize * n_words + position / 64] |= 1u64 << (position % 64);
    }
    let mut v = vec![u64::MAX; n_words];
    for symbol in b {
        let row = &masks[*symbol as usize * n_words..(*symbol as usize + 1) * n_words];
        let mut carry = 0u64;
        for (word, mask) in v.iter_mut().zip(row) {
            let u = *word & mask;
            let (sum, overflow1) = word.overflowing_add(u);
            let (sum, overflow2) = sum.overflowing_add(carry);
            carry = u64::from(overflow1 || overflow2);
            *word = sum | (*word & !mask);
        }
    }
    let mut zeros = 0;
    for (index, word) in v.iter().enumerate() {
        let bits = (a.len() - index * 64).min(64);
        let live = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        zeros += (!word & live).count_ones() as usize;
    }
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        // METRICS.md section 5, computed with rouge_score.
        let scores = score(
            "The cat sat on the mat.",
            "the cats were sitting on the mat",
        );
        assert_eq!(scores.rouge2, 0.5454545454545454);
        assert_eq!(
            score("raining cats", "It is raining cats and dogs").rouge2,
            0.33333333333333337
        );
    }

    #[test]
    fn tokenizer() {
        assert_eq!(tokenize("Café, naïve CATS!"), ["caf", "na", "ve", "cat"]);
        assert_eq!(tokenize("\u{212a}elvin İs"), ["kelvin", "i", "s"]);
        assert!(tokenize("...").is_empty());
    }

    #[test]
    fn token_ids_follow_tokenize() {
        for text in [
            "Café, naïve CATS! cats",
            "\u{212a}elvin İs running, RUNS",
            "",
            "a-b_c",
        ] {
            let mut ids = HashMap::default();
            let got = token_ids(text, &mut ids, &mut String::new(), &mut Vec::new());
            let tokens = tokenize(text);
            assert_eq!(got.len(), tokens.len(), "{text:?}");
            for (id, token) in got.iter().zip(&tokens) {
                assert_eq!(ids.get(token.as_bytes()), Some(id), "{text:?}");
            }
        }
    }

    #[test]
    fn empty_texts_score_zero() {
        let zero = RougeScores {
            rouge1: 0.0,
            rouge2: 0.0,
            rouge_l: 0.0,
        };
        assert_eq!(score("", ""), zero);
        assert_eq!(score("a b", ""), zero);
        assert_eq!(score("!!", "a"), zero);
    }

    /// `rouge_score`'s `_lcs_table`.
    fn lcs_table(a: &[u32], b: &[u32]) -> usize {
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                table[i][j] = if a[i - 1] == b[j - 1] {
                    table[i - 1][j - 1] + 1
                } else {
                    table[i - 1][j].max(table[i][j - 1])
                };
            }
        }
        table[a.len()][b.len()]
    }

    proptest::proptest! {
        #[test]
        fn bit_parallel_lcs_is_the_table_lcs(
            a in proptest::collection::vec(0u32..5, 0..200),
            b in proptest::collection::vec(0u32..5, 0..200),
        ) {
            proptest::prop_assert_eq!(lcs_length(&a, &b, 5), lcs_table(&a, &b));
        }

        #[test]
        fn scores_stay_in_range(output in "\\PC{0,80}", target in "\\PC{0,80}") {
            for (_, value) in score(&output, &target).named() {
                proptest::prop_assert!((0.0..=1.0).contains(&value));
            }
        }
    }
}
