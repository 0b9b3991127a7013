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
//! Cost: words become token ids through a bounded per-thread vocabulary of the words seen so
//! far with their stems' ids (the Porter stemmer was most of the time, and a record's words are
//! mostly its predecessors'), so a known word costs one hash lookup and no allocation; a
//! thread's token and counting buffers are reused from pair to pair (bounded).
//!
//! Invariants: pure (the vocabulary memoizes a pure function: a score never depends on what it
//! holds); bit-for-bit `rouge_score`'s F (`2·p·r / (p + r)`, 0 when both are 0); every score
//! in [0, 1]. Depends only on [`super::porter`].

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

/// Zero bytes after the lowered text: every token starts at least this far from the end, so its
/// first 8 bytes are one unaligned load, and the last token ends at a separator.
const PADDING: usize = 8;

/// `text` as the tokenizer reads it, into `out` (cleared first), followed by [`PADDING`] zero
/// bytes: Python's `lower()` (the Kelvin sign becomes `k`, `İ` becomes `i` + U+0307), then
/// ASCII-lowercased; every byte of a non-ASCII character of the result becomes a zero byte (a
/// separator, as it was). Tokens are its runs of `[a-z0-9]` bytes.
///
/// Characters are lowered one by one, the runs of ASCII between them in bulk: the same as
/// lowering the whole string (`str::to_lowercase` differs from `char::to_lowercase` only for a
/// final sigma, whose two forms are both non-ASCII), without its cost on ASCII text.
fn lower_into(text: &str, out: &mut Vec<u8>) {
    out.clear();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let run = bytes[at..]
            .iter()
            .position(|byte| !byte.is_ascii())
            .unwrap_or(bytes.len() - at);
        out.extend(bytes[at..at + run].iter().map(u8::to_ascii_lowercase));
        at += run;
        if let Some(character) = text.get(at..).and_then(|rest| rest.chars().next()) {
            for lowered in character.to_lowercase() {
                if lowered.is_ascii() {
                    out.push((lowered as u8).to_ascii_lowercase());
                } else {
                    out.extend(std::iter::repeat_n(0, lowered.len_utf8()));
                }
            }
            at += character.len_utf8();
        }
    }
    out.extend_from_slice(&[0; PADDING]);
}

/// Per byte of lowered text: whether it belongs to a token (`[a-z0-9]`).
static TOKEN_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_lowercase() || (byte as u8).is_ascii_digit();
        byte += 1;
    }
    table
};

/// The largest lowered-text buffer a thread keeps between pairs.
const KEPT_TEXT_BYTES: usize = 1 << 20;

/// When the vocabulary holds this many words, or [`VOCABULARY_BYTES`] of them, it starts again
/// empty at the next pair: a run's vocabulary is mostly a few thousand words, so it stays warm,
/// and its memory stays bounded (beyond the bound by at most one pair's words).
const VOCABULARY_WORDS: usize = 16_384;

/// See [`VOCABULARY_WORDS`].
const VOCABULARY_BYTES: usize = 2 << 20;

/// The words of the pairs scored on a thread, each with its Porter stem's id: the stemmer
/// was most of ROUGE's cost, and a record's words are mostly the words of the records before
/// it. It memoizes a pure function: a score never depends on what it holds.
#[derive(Default)]
struct Vocabulary {
    /// Lowercased word → stem id.
    words: WordTable,
    /// Stem → stem id (two words with one stem share it).
    stems: WordTable,
    /// Per stem id: the pair that last used it, and its token id in that pair.
    local: Vec<(u64, u32)>,
    /// The number of the pair being scored.
    pair: u64,
    /// Token ids given out in this pair (they are dense: 0, 1, 2, ...).
    n_tokens: u32,
    /// Reused stem buffer.
    stem: Vec<u8>,
    /// Reused lowered-text buffer.
    text: Vec<u8>,
}

impl Vocabulary {
    /// Starts a pair: token ids from 0 again, and the maps emptied when over their bounds.
    fn begin_pair(&mut self) {
        if self.words.len() >= VOCABULARY_WORDS
            || self.words.bytes() + self.stems.bytes() >= VOCABULARY_BYTES
        {
            self.words.clear();
            self.stems.clear();
            self.local.clear();
        }
        self.pair += 1;
        self.n_tokens = 0;
    }

    /// Distinct tokens of this pair so far.
    fn n_symbols(&self) -> usize {
        self.n_tokens as usize
    }

    /// The stem id of `word` (a lowercased run of `[a-z0-9]`), stemmed the first time.
    fn stem_id(&mut self, word: Key<'_>) -> u32 {
        if let Some(id) = self.words.get(word) {
            return id;
        }
        let token: &[u8] = if word.bytes.len() > 3 {
            porter::stem_into(word.bytes, &mut self.stem);
            &self.stem
        } else {
            word.bytes
        };
        let token = Key::new(token);
        let id = match self.stems.get(token) {
            Some(id) => id,
            None => {
                let id = self.local.len() as u32;
                self.stems.insert(token, id);
                self.local.push((0, 0));
                id
            }
        };
        self.words.insert(word, id);
        id
    }

    /// The token ids of `lowered`'s tokens ([`lower_into`]'s padded text) into `out` (cleared
    /// first), in order: equal ids for equal stems, numbered in order of first appearance in the
    /// pair.
    fn ids(&mut self, lowered: &[u8], out: &mut Vec<u32>) {
        out.clear();
        let end = lowered.len().saturating_sub(PADDING);
        let mut at = 0;
        loop {
            while at < end && !TOKEN_BYTE[usize::from(lowered[at])] {
                at += 1;
            }
            if at >= end {
                break;
            }
            let start = at;
            // The padding's zero bytes end the last token.
            while TOKEN_BYTE[usize::from(lowered[at])] {
                at += 1;
            }
            let word = Key::padded(lowered, start, at);
            let stem = self.stem_id(word) as usize;
            let slot = &mut self.local[stem];
            if slot.0 != self.pair {
                *slot = (self.pair, self.n_tokens);
                self.n_tokens += 1;
            }
            out.push(slot.1);
        }
    }
}

/// A word as [`WordTable`] keys it: its bytes and their first 8 (little-endian, zero-filled).
#[derive(Clone, Copy)]
struct Key<'a> {
    bytes: &'a [u8],
    head: u64,
}

impl<'a> Key<'a> {
    /// The key of any byte string.
    fn new(bytes: &'a [u8]) -> Self {
        // Byte by byte: a copy of a variable length would be a `memcpy` call per word.
        let head = bytes
            .iter()
            .take(8)
            .enumerate()
            .fold(0u64, |head, (i, byte)| head | u64::from(*byte) << (8 * i));
        Key { bytes, head }
    }

    /// The key of `text[start..end]`, where `text` has at least 8 bytes from `start` on.
    fn padded(text: &'a [u8], start: usize, end: usize) -> Self {
        let mut first = [0u8; 8];
        first.copy_from_slice(&text[start..start + 8]);
        let len = end - start;
        let mask = if len >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * len)) - 1
        };
        Key {
            bytes: &text[start..end],
            head: u64::from_le_bytes(first) & mask,
        }
    }

    /// FxHash (rustc's) of the length, the head and the rest's 8-byte chunks: token ids need
    /// no protection against collisions an attacker chooses (a bad text costs its own record a
    /// little time).
    fn hash(&self) -> u64 {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut hash = ((self.bytes.len() as u64).rotate_left(5) ^ self.head).wrapping_mul(K);
        if self.bytes.len() > 8 {
            for chunk in self.bytes[8..].chunks(8) {
                hash = (hash.rotate_left(5) ^ Key::new(chunk).head).wrapping_mul(K);
            }
        }
        hash
    }
}

/// A map from words (byte strings) to `u32`, built for the tokenizer's hot loop: open
/// addressing with linear probing over a power-of-two slot array, each slot holding its word's
/// length and first 8 bytes (a word of at most 8 bytes, most words, is compared without
/// reading anything else), longer words' bytes in one arena. No allocation per word. Bounded by
/// its user ([`Vocabulary::begin_pair`]).
#[derive(Default)]
struct WordTable {
    /// Every key's bytes, one after the other.
    arena: Vec<u8>,
    /// Power-of-two many slots (or none), at most half full.
    slots: Vec<Slot>,
    /// Occupied slots.
    len: usize,
}

/// A slot of [`WordTable`]: empty when `value` is [`Slot::EMPTY`].
#[derive(Clone, Copy)]
struct Slot {
    /// The key's first 8 bytes ([`Key::head`]).
    head: u64,
    /// The key's hash's high half (its home slot).
    home: u32,
    /// The key's bytes in the arena.
    start: u32,
    len: u32,
    value: u32,
}

impl Slot {
    const EMPTY: u32 = u32::MAX;
    const VACANT: Slot = Slot {
        head: 0,
        home: 0,
        start: 0,
        len: 0,
        value: Slot::EMPTY,
    };
}

impl WordTable {
    /// The slot of `key` (its home `home`): where it is, or the vacant slot it would go in.
    fn find(&self, key: Key<'_>, home: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut index = home as usize & mask;
        loop {
            let slot = &self.slots[index];
            if slot.value == Slot::EMPTY
                || (slot.head == key.head
                    && slot.len as usize == key.bytes.len()
                    && (key.bytes.len() <= 8
                        || same(
                            &self.arena
                                [slot.start as usize + 8..slot.start as usize + key.bytes.len()],
                            &key.bytes[8..],
                        )))
            {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    fn get(&self, key: Key<'_>) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.slots[self.find(key, (key.hash() >> 32) as u32)];
        (slot.value != Slot::EMPTY).then_some(slot.value)
    }

    /// Adds `key` (not in the table) with `value`.
    fn insert(&mut self, key: Key<'_>, value: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let home = (key.hash() >> 32) as u32;
        let index = self.find(key, home);
        self.slots[index] = Slot {
            head: key.head,
            home,
            start: self.arena.len() as u32,
            len: key.bytes.len() as u32,
            value,
        };
        self.arena.extend_from_slice(key.bytes);
        self.len += 1;
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(256);
        let old = std::mem::replace(&mut self.slots, vec![Slot::VACANT; capacity]);
        let mask = capacity - 1;
        for slot in old.into_iter().filter(|slot| slot.value != Slot::EMPTY) {
            let mut index = slot.home as usize & mask;
            while self.slots[index].value != Slot::EMPTY {
                index = (index + 1) & mask;
            }
            self.slots[index] = slot;
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The bytes of the keys.
    fn bytes(&self) -> usize {
        self.arena.len()
    }

    fn clear(&mut self) {
        self.arena.clear();
        self.slots.fill(Slot::VACANT);
        self.len = 0;
    }
}

/// Byte equality without a `memcmp` call (words are a few bytes long).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A thread's reused buffers for one pair: token ids and the counting tables.
#[derive(Default)]
struct Scratch {
    prediction: Vec<u32>,
    reference: Vec<u32>,
    counts: Vec<u32>,
    starts: Vec<u32>,
    filled: Vec<u32>,
    seconds: Vec<u32>,
    masks: Vec<u64>,
    columns: Vec<u64>,
}

impl Scratch {
    /// The most elements a buffer keeps between pairs (a longer pair's buffers are dropped).
    const KEPT: usize = 1 << 18;

    /// Drops buffers that one long pair made large.
    fn trim(&mut self) {
        for buffer in [
            &mut self.prediction,
            &mut self.reference,
            &mut self.counts,
            &mut self.starts,
            &mut self.filled,
            &mut self.seconds,
        ] {
            if buffer.capacity() > Self::KEPT {
                *buffer = Vec::new();
            }
        }
        for buffer in [&mut self.masks, &mut self.columns] {
            if buffer.capacity() > Self::KEPT {
                *buffer = Vec::new();
            }
        }
    }
}

/// What a thread keeps between pairs: the vocabulary and the buffers.
#[derive(Default)]
struct State {
    vocabulary: Vocabulary,
    scratch: Scratch,
}

std::thread_local! {
    static STATE: std::cell::RefCell<State> = std::cell::RefCell::default();
}

impl State {
    fn score(&mut self, model_output: &str, target: &str) -> RougeScores {
        let State {
            vocabulary,
            scratch,
        } = self;
        // Tokens as small integers, shared by both texts.
        vocabulary.begin_pair();
        let mut text = std::mem::take(&mut vocabulary.text);
        lower_into(model_output, &mut text);
        vocabulary.ids(&text, &mut scratch.prediction);
        lower_into(target, &mut text);
        vocabulary.ids(&text, &mut scratch.reference);
        if text.capacity() <= KEPT_TEXT_BYTES {
            vocabulary.text = text;
        }
        let n_symbols = vocabulary.n_symbols();
        let (prediction, reference) = (&scratch.prediction, &scratch.reference);

        let rouge1 = unigram_f(reference, prediction, n_symbols, &mut scratch.counts);
        let rouge2 = bigram_f(
            reference,
            prediction,
            n_symbols,
            [
                &mut scratch.starts,
                &mut scratch.filled,
                &mut scratch.seconds,
            ],
        );
        let rouge_l = if reference.is_empty() || prediction.is_empty() {
            0.0
        } else {
            let lcs = lcs_length_with(
                reference,
                prediction,
                n_symbols,
                &mut scratch.masks,
                &mut scratch.columns,
            ) as f64;
            fmeasure(lcs / prediction.len() as f64, lcs / reference.len() as f64)
        };
        scratch.trim();
        RougeScores {
            rouge1,
            rouge2,
            rouge_l,
        }
    }
}

/// Scores one pair.
pub fn score(model_output: &str, target: &str) -> RougeScores {
    STATE.with(|state| match state.try_borrow_mut() {
        Ok(mut state) => state.score(model_output, target),
        Err(_) => State::default().score(model_output, target),
    })
}

/// `rouge_score.scoring.fmeasure`.
fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// `_score_ngrams` of unigrams: the multiset overlap of two lists of ids below `n_symbols`
/// (counted, not sorted), over max(count, 1).
fn unigram_f(target: &[u32], prediction: &[u32], n_symbols: usize, counts: &mut Vec<u32>) -> f64 {
    counts.clear();
    counts.resize(n_symbols, 0);
    for id in target {
        counts[*id as usize] += 1;
    }
    let mut overlap = 0usize;
    for id in prediction {
        let count = &mut counts[*id as usize];
        if *count > 0 {
            *count -= 1;
            overlap += 1;
        }
    }
    overlap_f(overlap, target.len(), prediction.len())
}

/// `_score_ngrams`' F of an overlap.
fn overlap_f(overlap: usize, n_target: usize, n_prediction: usize) -> f64 {
    let overlap = overlap as f64;
    let precision = overlap / n_prediction.max(1) as f64;
    let recall = overlap / n_target.max(1) as f64;
    fmeasure(precision, recall)
}

/// `_score_ngrams` of bigrams: the multiset overlap of the two lists' bigrams (ids below
/// `n_symbols`), over max(count, 1). The target's bigrams are bucketed by their first token
/// (a counting sort); each prediction bigram takes an unused equal one from its bucket.
fn bigram_f(
    target: &[u32],
    prediction: &[u32],
    n_symbols: usize,
    [starts, filled, seconds]: [&mut Vec<u32>; 3],
) -> f64 {
    let n_target = target.len().saturating_sub(1);
    let n_prediction = prediction.len().saturating_sub(1);
    if n_target == 0 || n_prediction == 0 {
        return overlap_f(0, n_target, n_prediction);
    }
    // starts[s]..starts[s + 1]: the second tokens of the target bigrams starting with s.
    starts.clear();
    starts.resize(n_symbols + 1, 0);
    for pair in target.windows(2) {
        starts[pair[0] as usize + 1] += 1;
    }
    for symbol in 0..n_symbols {
        starts[symbol + 1] += starts[symbol];
    }
    filled.clear();
    filled.extend_from_slice(starts);
    seconds.clear();
    seconds.resize(n_target, 0);
    for pair in target.windows(2) {
        let slot = &mut filled[pair[0] as usize];
        seconds[*slot as usize] = pair[1];
        *slot += 1;
    }
    // A matched second token is replaced by `u32::MAX` (no token id is that large).
    let mut overlap = 0usize;
    for pair in prediction.windows(2) {
        let first = pair[0] as usize;
        let bucket = &mut seconds[starts[first] as usize..starts[first + 1] as usize];
        if let Some(second) = bucket.iter_mut().find(|second| **second == pair[1]) {
            *second = u32::MAX;
            overlap += 1;
        }
    }
    overlap_f(overlap, n_target, n_prediction)
}

/// The length of the longest common subsequence of `a` and `b` (symbols below `n_symbols`),
/// with Hyyrö's bit-parallel recurrence `V ← (V + (V & M)) | (V & !M)` over `a`'s positions.
#[cfg(test)]
pub(crate) fn lcs_length(a: &[u32], b: &[u32], n_symbols: usize) -> usize {
    lcs_length_with(a, b, n_symbols, &mut Vec::new(), &mut Vec::new())
}

/// [`lcs_length`] with reused buffers.
fn lcs_length_with(
    a: &[u32],
    b: &[u32],
    n_symbols: usize,
    masks: &mut Vec<u64>,
    v: &mut Vec<u64>,
) -> usize {
    let n_words = a.len().div_ceil(64);
    if n_words == 0 || b.is_empty() {
        return 0;
    }
    // Position masks: bit i of symbol s's row is set when a[i] == s.
    masks.clear();
    masks.resize(n_symbols * n_words, 0);
    for (position, symbol) in a.iter().enumerate() {
        masks[*symbol as usize * n_words + position / 64] |= 1u64 << (position % 64);
    }
    v.clear();
    v.resize(n_words, u64::MAX);
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
    fn token_ids_follow_tokenize_with_a_full_vocabulary_or_not() {
        let texts = [
            "Café, naïve CATS! cats",
            "\u{212a}elvin İs running, RUNS",
            "",
            "a-b_c",
            "generalization generalizations relational relate",
        ];
        let distinct = |tokens: &[String]| {
            let mut seen: Vec<&String> = tokens.iter().collect();
            seen.sort();
            seen.dedup();
            seen.len()
        };
        let mut vocabulary = Vocabulary::default();
        // The second round starts over a vocabulary filled past its bound with other words.
        for round in 0..2 {
            for text in texts {
                vocabulary.begin_pair();
                let mut lowered = Vec::new();
                lower_into(text, &mut lowered);
                let mut got = Vec::new();
                vocabulary.ids(&lowered, &mut got);
                let tokens = tokenize(text);
                assert_eq!(got.len(), tokens.len(), "{text:?}");
                // Ids are dense in order of first appearance, equal exactly for equal tokens.
                for (id, token) in got.iter().zip(&tokens) {
                    let first = tokens.iter().position(|other| other == token).unwrap_or(0);
                    assert_eq!(*id, got[first], "{text:?}");
                    assert_eq!(*id as usize, distinct(&tokens[..first]), "{text:?} {round}");
                }
                assert_eq!(vocabulary.n_symbols(), distinct(&tokens), "{text:?}");
            }
            for n in 0..VOCABULARY_WORDS {
                vocabulary.stem_id(Key::new(format!("filler{n}words").as_bytes()));
            }
        }
        vocabulary.begin_pair();
        assert_eq!(vocabulary.words.len(), 0, "emptied once over its bound");
    }

    #[test]
    fn the_word_table_finds_what_it_holds() {
        let mut table = WordTable::default();
        assert_eq!(table.get(Key::new(b"none")), None);
        let words: Vec<String> = (0..5_000)
            .map(|n| format!("w{n}x{}", "y".repeat(n % 19)))
            .collect();
        for (value, word) in words.iter().enumerate() {
            assert_eq!(table.get(Key::new(word.as_bytes())), None, "{word}");
            table.insert(Key::new(word.as_bytes()), value as u32);
        }
        for (value, word) in words.iter().enumerate() {
            assert_eq!(
                table.get(Key::new(word.as_bytes())),
                Some(value as u32),
                "{word}"
            );
        }
        assert_eq!(table.get(Key::new(b"w1")), None);
        assert_eq!(table.get(Key::new(b"")), None);
        assert_eq!(table.len(), words.len());
        assert_eq!(table.bytes(), words.iter().map(String::len).sum::<usize>());
        table.clear();
        assert_eq!(
            (table.len(), table.bytes(), table.get(Key::new(b"w0x"))),
            (0, 0, None)
        );
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

    /// `_score_ngrams` of bigrams as `rouge_score` counts them (`Counter` intersection).
    fn bigram_f_by_counting(target: &[u32], prediction: &[u32]) -> f64 {
        let count = |tokens: &[u32]| {
            let mut counts = std::collections::BTreeMap::new();
            for pair in tokens.windows(2) {
                *counts.entry((pair[0], pair[1])).or_insert(0usize) += 1;
            }
            counts
        };
        let (target_counts, prediction_counts) = (count(target), count(prediction));
        let overlap = target_counts
            .iter()
            .map(|(bigram, n)| (*n).min(prediction_counts.get(bigram).copied().unwrap_or(0)))
            .sum();
        overlap_f(
            overlap,
            target.len().saturating_sub(1),
            prediction.len().saturating_sub(1),
        )
    }

    /// The lowered text as the whole string's `to_lowercase` gives it, non-ASCII bytes as zeros.
    fn lowered_whole(text: &str) -> Vec<u8> {
        let mut lowered: Vec<u8> = text
            .to_lowercase()
            .bytes()
            .map(|byte| {
                if byte.is_ascii() {
                    byte.to_ascii_lowercase()
                } else {
                    0
                }
            })
            .collect();
        lowered.extend_from_slice(&[0; PADDING]);
        lowered
    }

    #[test]
    fn lowering_character_by_character_is_lowering_the_whole_text() {
        for text in [
            "",
            "ΣΑΣ ΟΔΟΣ. Σ",
            "\u{212a}elvin İstanbul",
            "ǅemal Straße ﬁne",
            "ABC déf GHI",
            "ends in é",
        ] {
            let mut lowered = Vec::new();
            lower_into(text, &mut lowered);
            assert_eq!(lowered, lowered_whole(text), "{text:?}");
        }
    }

    #[test]
    fn words_of_every_length_and_at_the_edges_are_keyed_by_their_bytes() {
        // Words of 1 to 20 bytes, at the start, the middle and the very end of the text.
        let words: Vec<String> = (1..=20)
            .map(|n| {
                (0..n)
                    .map(|i| (b'a' + (i * 7 + n) as u8 % 26) as char)
                    .collect()
            })
            .collect();
        let text = words.join(" ");
        let mut lowered = Vec::new();
        lower_into(&text, &mut lowered);
        let mut vocabulary = Vocabulary::default();
        vocabulary.begin_pair();
        let mut ids = Vec::new();
        vocabulary.ids(&lowered, &mut ids);
        assert_eq!(ids, (0..20).collect::<Vec<u32>>());
        let mut at = 0;
        for word in &words {
            let key = Key::padded(&lowered, at, at + word.len());
            let plain = Key::new(word.as_bytes());
            assert_eq!((key.bytes, key.head), (plain.bytes, plain.head), "{word}");
            assert_eq!(key.hash(), plain.hash(), "{word}");
            at += word.len() + 1;
        }
    }

    proptest::proptest! {
        #[test]
        fn lowering_matches_the_whole_text_lowered(text in "\\PC{0,60}") {
            let mut lowered = Vec::new();
            lower_into(&text, &mut lowered);
            proptest::prop_assert_eq!(lowered, lowered_whole(&text));
        }

        #[test]
        fn bucketed_bigrams_count_like_rouge_score(
            a in proptest::collection::vec(0u32..6, 0..120),
            b in proptest::collection::vec(0u32..6, 0..120),
        ) {
            let mut buffers = [Vec::new(), Vec::new(), Vec::new()];
            let [starts, filled, seconds] = &mut buffers;
            proptest::prop_assert_eq!(
                bigram_f(&a, &b, 6, [starts, filled, seconds]),
                bigram_f_by_counting(&a, &b)
            );
        }

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
