//! Text primitives with Python's exact semantics, as fmeval 1.0.3 uses them (METRICS.md):
//! `str.isspace` whitespace, `str.strip()`, `str.split()`, `str.lower()`, ASCII punctuation, the
//! `<OR>` target split and the QuAC/SQuAD normalization `N(text)`.
//!
//! Invariants: nothing here allocates on ASCII input except into caller-provided buffers, so the
//! metrics can reuse them across samples; non-ASCII text is lowercased with the full Unicode
//! rules (`str::to_lowercase`, which matches Python's `str.lower`, final sigma included). The
//! only differences are letters newer than the Python's Unicode tables (checked over every code
//! point against Python 3.11 / Unicode 14: 55 letters added in Unicode 16 and later).

/// The delimiter between alternative reference answers.
pub const TARGET_DELIMITER: &str = "<OR>";

/// Whether `character` is whitespace for Python's `str.isspace` (and so for `strip()` and
/// `split()`). Unlike `char::is_whitespace` this includes U+001C–U+001F.
pub fn is_py_whitespace(character: char) -> bool {
    matches!(
        character,
        '\u{0009}'..='\u{000D}'
            | '\u{001C}'..='\u{0020}'
            | '\u{0085}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// Python's `str.strip()` with no arguments.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_whitespace)
}

/// Python's `str.split()` with no arguments: runs of whitespace separate, empty pieces dropped.
pub fn py_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_py_whitespace)
        .filter(|piece| !piece.is_empty())
}

/// Whether `character` is one of the 32 ASCII punctuation characters (`string.punctuation`).
pub fn is_ascii_punctuation(character: char) -> bool {
    character.is_ascii_punctuation()
}

/// Splits a target into its alternatives on the exact substring `<OR>` (empty pieces kept).
pub fn alternatives(target: &str) -> impl Iterator<Item = &str> {
    target.split(TARGET_DELIMITER)
}

/// Python's `str.lower()` of `text`, written into `out` (cleared first).
pub fn lower_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        out.reserve(text.len());
        out.extend(text.chars().map(|character| character.to_ascii_lowercase()));
    } else {
        // Context-sensitive rules (final sigma) need the whole string at once.
        out.push_str(&text.to_lowercase());
    }
}

/// The QuAC/SQuAD normalization `N(text)` of METRICS.md 2.1, written into `out` (cleared first):
/// lowercase, delete ASCII punctuation, split on U+0020 only, drop empty pieces and the articles
/// `a`, `an`, `the`, join with one space. `scratch` is a reusable buffer.
pub fn normalize_into(text: &str, scratch: &mut String, out: &mut String) {
    if text.is_ascii() {
        normalize_ascii_into(text, out);
        return;
    }
    lower_into(text, scratch);
    out.clear();
    for piece in scratch.split(' ') {
        let start = out.len();
        if start > 0 {
            out.push(' ');
        }
        let word_start = out.len();
        out.extend(
            piece
                .chars()
                .filter(|character| !is_ascii_punctuation(*character)),
        );
        let word = &out[word_start..];
        if is_dropped_piece(word.as_bytes()) {
            out.truncate(start);
        }
    }
}

/// The ASCII fast path of [`normalize_into`]: one pass over the bytes, lowercasing as it goes.
fn normalize_ascii_into(text: &str, out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.clear();
    for piece in text.as_bytes().split(|byte| *byte == b' ') {
        let start = bytes.len();
        if start > 0 {
            bytes.push(b' ');
        }
        let word_start = bytes.len();
        bytes.extend(
            piece
                .iter()
                .filter(|byte| !byte.is_ascii_punctuation())
                .map(u8::to_ascii_lowercase),
        );
        if is_dropped_piece(&bytes[word_start..]) {
            bytes.truncate(start);
        }
    }
    *out = match String::from_utf8(bytes) {
        Ok(normalized) => normalized,
        // Unreachable: ASCII in, ASCII out. Recover the text rather than lose it.
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
}

/// Whether a normalized piece is dropped: empty or one of the articles.
fn is_dropped_piece(word: &[u8]) -> bool {
    matches!(word, b"" | b"a" | b"an" | b"the")
}

/// Convenience form of [`normalize_into`] that allocates.
pub fn normalize(text: &str) -> String {
    let mut scratch = String::new();
    let mut out = String::new();
    normalize_into(text, &mut scratch, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(normalize(input), expected, "input: {input:?}");
    }

    #[test]
    fn normalization() {
        check(
            "The crisis began in October 1973.",
            "crisis began in october 1973",
        );
        check("New  York   City", "new york city");
        check("the\nanswer", "the\nanswer");
        check("The Answer", "answer");
        check("non-combustion", "noncombustion");
        check("U.S.", "us");
        check("the", "");
        check("a an the", "");
        check("", "");
        check("the.", "");
        check("O’Brien", "o’brien");
        check("\u{a0}Paris\u{a0}", "\u{a0}paris\u{a0}");
        check("ΟΔΟΣ", "οδος");
        check("İ", "i\u{307}");
        check("STRASSE ß", "strasse ß");
        check("  A  ", "");
        check("x\tthe y", "x\tthe y");
        check("!!! ... ?", "");
        check("¿Qué?", "¿qué");
    }

    #[test]
    fn strip_uses_pythons_whitespace() {
        assert_eq!(py_strip("\u{1c}\u{1f} a \u{3000}\u{2028}\u{85}"), "a");
        assert_eq!(py_strip("\u{200b}a\u{feff}"), "\u{200b}a\u{feff}");
        assert_eq!(
            py_strip("\t\n\u{b}\u{c}\r a\u{a0}\u{202f}\u{205f}\u{1680}"),
            "a"
        );
    }

    #[test]
    fn split_uses_pythons_whitespace() {
        let pieces: Vec<&str> = py_split(" a\u{1d}b\n\n c\u{200b}d ").collect();
        assert_eq!(pieces, ["a", "b", "c\u{200b}d"]);
        assert_eq!(py_split("   ").count(), 0);
    }

    #[test]
    fn alternatives_keep_empty_pieces() {
        let check_split = |target: &str, expected: &[&str]| {
            assert_eq!(
                alternatives(target).collect::<Vec<_>>(),
                expected,
                "target: {target:?}"
            );
        };
        check_split("France<OR>", &["France", ""]);
        check_split("<OR>", &["", ""]);
        check_split("Paris<or>London", &["Paris<or>London"]);
        check_split("", &[""]);
    }

    #[test]
    fn punctuation_is_ascii_only() {
        let punctuation: String = (0u8..128)
            .map(char::from)
            .filter(|character| is_ascii_punctuation(*character))
            .collect();
        assert_eq!(punctuation, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
        for character in ['’', '“', '。', '—', '¿', '\u{a0}'] {
            assert!(!is_ascii_punctuation(character), "{character:?}");
        }
    }
}
