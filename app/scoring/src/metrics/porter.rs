//! NLTK's Porter stemmer in its default `NLTK_EXTENSIONS` mode (nltk 3.9/3.10
//! `nltk.stem.porter.PorterStemmer().stem`), which `rouge_score` applies to ROUGE tokens longer
//! than 3 characters (METRICS.md section 5).
//!
//! Written from NLTK's source, rule for rule, because no stemmer crate implements NLTK's
//! extensions (the irregular-forms pool, `ies`/`ied` on 4-letter words, `alli`, `fulli`, `logi`,
//! the 2-letter cvc rule); checked against 4,000 words stemmed by NLTK
//! (`tests/data/porter.tsv`). Depends on nothing; works on lowercase ASCII (the only input ROUGE
//! gives it) and returns any other input unchanged.

/// NLTK's irregular forms: (word, stem).
const POOL: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

/// The stem of `word` (lowercase ASCII letters and digits), as NLTK's `PorterStemmer().stem`.
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.bytes().any(|byte| byte.is_ascii_uppercase()) {
        // ROUGE lowercases and keeps [a-z0-9] only; anything else is not ours to stem.
        return word.to_owned();
    }
    if let Some((_, stem)) = POOL.iter().find(|(form, _)| *form == word) {
        return (*stem).to_owned();
    }
    if word.len() <= 2 {
        return word.to_owned();
    }
    let mut stem = Vec::with_capacity(word.len() + 2);
    stem_into(word.as_bytes(), &mut stem);
    // Only ASCII bytes were removed or added.
    String::from_utf8(stem).unwrap_or_default()
}

/// The stem of `word` (lowercase ASCII letters and digits) written into `out` (cleared first),
/// so a caller stemming many words reuses one buffer.
pub fn stem_into(word: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if let Some((_, stem)) = POOL.iter().find(|(form, _)| same(form.as_bytes(), word)) {
        out.extend_from_slice(stem.as_bytes());
        return;
    }
    out.extend_from_slice(word);
    if word.len() <= 2 {
        return;
    }
    step1a(out);
    step1b(out);
    step1c(out);
    step2(out);
    step3(out);
    step4(out);
    step5a(out);
    step5b(out);
}

/// Byte equality without a `memcmp` call: the words are a few bytes long, and the library
/// call was a fifth of ROUGE's time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `word.ends_with(suffix)` without a `memcmp` call, compared from the last byte (where most
/// of a rule list's suffixes already differ).
fn ends(word: &[u8], suffix: &[u8]) -> bool {
    word.len() >= suffix.len()
        && word
            .iter()
            .rev()
            .zip(suffix.iter().rev())
            .all(|(x, y)| x == y)
}

fn is_vowel(byte: u8) -> bool {
    matches!(byte, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// NLTK's `_is_consonant`: `y` is a consonant at the start or after a vowel.
fn is_consonant(word: &[u8], index: usize) -> bool {
    let byte = word[index];
    if is_vowel(byte) {
        return false;
    }
    if byte == b'y' {
        return index == 0 || !is_consonant(word, index - 1);
    }
    true
}

/// The number of `vc` sequences in the word's consonant/vowel pattern.
fn measure(stem: &[u8]) -> usize {
    let mut count = 0;
    let mut previous_vowel = false;
    for index in 0..stem.len() {
        let consonant = is_consonant(stem, index);
        if consonant && previous_vowel {
            count += 1;
        }
        previous_vowel = !consonant;
    }
    count
}

fn contains_vowel(stem: &[u8]) -> bool {
    (0..stem.len()).any(|index| !is_consonant(stem, index))
}

fn ends_double_consonant(word: &[u8]) -> bool {
    let n = word.len();
    n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1)
}

/// `*o`: consonant-vowel-consonant, the last not `w`, `x` or `y`; NLTK also counts a 2-letter
/// vowel-consonant word.
fn ends_cvc(word: &[u8]) -> bool {
    let n = word.len();
    (n >= 3
        && is_consonant(word, n - 3)
        && !is_consonant(word, n - 2)
        && is_consonant(word, n - 1)
        && !matches!(word[n - 1], b'w' | b'x' | b'y'))
        || (n == 2 && !is_consonant(word, 0) && is_consonant(word, 1))
}

fn replace_suffix(word: &mut Vec<u8>, suffix_len: usize, replacement: &str) {
    word.truncate(word.len() - suffix_len);
    word.extend_from_slice(replacement.as_bytes());
}

/// A rule's condition on the stem left after removing the suffix.
#[derive(Clone, Copy)]
enum Condition {
    Always,
    /// `m > 0`.
    Positive,
    /// `m > 1`.
    GreaterThanOne,
    /// `m > 1` and the stem ends in `s` or `t` (step 4's `ion`).
    Ion,
    /// NLTK's `logi` rule: `m > 0` of the word without its last 3 letters.
    Logi,
}

fn holds(condition: Condition, stem: &[u8], word: &[u8]) -> bool {
    match condition {
        Condition::Always => true,
        Condition::Positive => measure(stem) > 0,
        Condition::GreaterThanOne => measure(stem) > 1,
        Condition::Ion => measure(stem) > 1 && matches!(stem.last(), Some(b's' | b't')),
        Condition::Logi => measure(&word[..word.len() - 3]) > 0,
    }
}

/// NLTK's `_apply_rule_list`: the first rule whose suffix matches decides (applied or not).
fn apply_rules(word: &mut Vec<u8>, rules: &[(&str, &str, Condition)]) {
    for (suffix, replacement, condition) in rules {
        if ends(word, suffix.as_bytes()) {
            let stem_len = word.len() - suffix.len();
            if holds(*condition, &word[..stem_len], word) {
                replace_suffix(word, suffix.len(), replacement);
            }
            return;
        }
    }
}

fn step1a(word: &mut Vec<u8>) {
    if ends(word, b"ies") && word.len() == 4 {
        replace_suffix(word, 3, "ie");
        return;
    }
    apply_rules(
        word,
        &[
            ("sses", "ss", Condition::Always),
            ("ies", "i", Condition::Always),
            ("ss", "ss", Condition::Always),
            ("s", "", Condition::Always),
        ],
    );
}

fn step1b(word: &mut Vec<u8>) {
    if ends(word, b"ied") {
        let replacement = if word.len() == 4 { "ie" } else { "i" };
        replace_suffix(word, 3, replacement);
        return;
    }
    if ends(word, b"eed") {
        if measure(&word[..word.len() - 3]) > 0 {
            replace_suffix(word, 3, "ee");
        }
        return;
    }
    let mut stem_len = None;
    for suffix in [&b"ed"[..], &b"ing"[..]] {
        if ends(word, suffix) && contains_vowel(&word[..word.len() - suffix.len()]) {
            stem_len = Some(word.len() - suffix.len());
            break;
        }
    }
    let Some(stem_len) = stem_len else {
        return;
    };
    word.truncate(stem_len);
    // The intermediate stem's rules: `at`, `bl`, `iz` get an `e`; a double consonant other
    // than l, s, z loses one; a short cvc stem of measure 1 gets an `e`.
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends(word, suffix.as_bytes()) {
            replace_suffix(word, suffix.len(), replacement);
            return;
        }
    }
    if ends_double_consonant(word) {
        if !matches!(word.last(), Some(b'l' | b's' | b'z')) {
            word.pop();
        }
        return;
    }
    if measure(word) == 1 && ends_cvc(word) {
        word.push(b'e');
    }
}

fn step1c(word: &mut [u8]) {
    let n = word.len();
    if n >= 1 && word[n - 1] == b'y' {
        let stem = &word[..n - 1];
        if stem.len() > 1 && is_consonant(stem, stem.len() - 1) {
            word[n - 1] = b'i';
        }
    }
}

fn step2(word: &mut Vec<u8>) {
    if ends(word, b"alli") && measure(&word[..word.len() - 4]) > 0 {
        replace_suffix(word, 4, "al");
        step2(word);
        return;
    }
    use Condition::Positive as P;
    apply_rules(
        word,
        &[
            ("ational", "ate", P),
            ("tional", "tion", P),
            ("enci", "ence", P),
            ("anci", "ance", P),
            ("izer", "ize", P),
            ("bli", "ble", P),
            ("alli", "al", P),
            ("entli", "ent", P),
            ("eli", "e", P),
            ("ousli", "ous", P),
            ("ization", "ize", P),
            ("ation", "ate", P),
            ("ator", "ate", P),
            ("alism", "al", P),
            ("iveness", "ive", P),
            ("fulness", "ful", P),
            ("ousness", "ous", P),
            ("aliti", "al", P),
            ("iviti", "ive", P),
            ("biliti", "ble", P),
            ("fulli", "ful", P),
            ("logi", "log", Condition::Logi),
        ],
    );
}

fn step3(word: &mut Vec<u8>) {
    use Condition::Positive as P;
    apply_rules(
        word,
        &[
            ("icate", "ic", P),
            ("ative", "", P),
            ("alize", "al", P),
            ("iciti", "ic", P),
            ("ical", "ic", P),
            ("ful", "", P),
            ("ness", "", P),
        ],
    );
}

fn step4(word: &mut Vec<u8>) {
    use Condition::GreaterThanOne as G;
    apply_rules(
        word,
        &[
            ("al", "", G),
            ("ance", "", G),
            ("ence", "", G),
            ("er", "", G),
            ("ic", "", G),
            ("able", "", G),
            ("ible", "", G),
            ("ant", "", G),
            ("ement", "", G),
            ("ment", "", G),
            ("ent", "", G),
            ("ion", "", Condition::Ion),
            ("ou", "", G),
            ("ism", "", G),
            ("ate", "", G),
            ("iti", "", G),
            ("ous", "", G),
            ("ive", "", G),
            ("ize", "", G),
        ],
    );
}

fn step5a(word: &mut Vec<u8>) {
    if word.last() == Some(&b'e') {
        let stem = &word[..word.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            word.pop();
        }
    }
}

fn step5b(word: &mut Vec<u8>) {
    if ends(word, b"ll") && measure(&word[..word.len() - 1]) > 1 {
        word.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_examples() {
        for (word, expected) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cats", "cat"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("sitting", "sit"),
            ("skies", "sky"),
            ("dying", "die"),
            ("running", "run"),
            ("were", "were"),
        ] {
            assert_eq!(stem(word), expected, "{word}");
        }
    }

    #[test]
    fn short_and_foreign_words_pass_through() {
        assert_eq!(stem("is"), "is");
        assert_eq!(stem(""), "");
        assert_eq!(stem("café"), "café");
    }
}
