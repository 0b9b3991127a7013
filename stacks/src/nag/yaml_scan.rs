//! A linear pre-pass over YAML text, run before the YAML parser, that refuses what the parser
//! would spend quadratic time on or would accept silently.
//!
//! libyaml (behind `serde_yaml`) keeps one entry per open flow collection and walks them all at
//! every token, so 80,000 nested `[` take minutes before its own depth limit is ever reached.
//! This pass finds token boundaries the way libyaml's scanner does (quoted, plain and block
//! scalars, comments, the block indentation stack) in one pass with O(1) work per character,
//! and stops at the first collection nested deeper than the limit, so the parser only ever sees
//! shallow input. It also refuses core-schema tags that `serde_yaml` drops without a word
//! (`Type: !!binary QVdT` would read as the string `QVdT` and skip the resource), verbatim tags
//! and `%TAG` directives.
//! Invariant: the pass never refuses input for a reason other than depth or an unsupported
//! tag or directive; where libyaml would report a syntax error it stops and leaves the error to
//! the parser, which names the position.

/// Core-schema tags that mean what a template means without them.
const HARMLESS_CORE_TAGS: &[&str] = &["str", "int", "float", "bool", "null", "seq", "map"];

/// How far a simple key (`key: value`) may run, as in libyaml.
const SIMPLE_KEY_MAX_BYTES: usize = 1024;

/// Why the text was refused, with a 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Checks YAML `text` for collections nested deeper than `max_depth` and for unsupported tags.
pub fn check(text: &str, max_depth: usize) -> Result<(), ScanProblem> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
        line: 0,
        column: 0,
        max_depth,
        flow_level: 0,
        indent: -1,
        indents: Vec::new(),
        simple_key_allowed: true,
        simple_key: None,
        saved_keys: Vec::new(),
    };
    match scanner.run() {
        Ok(()) | Err(Stop::Syntax) => Ok(()),
        Err(Stop::Refused(problem)) => Err(problem),
    }
}

/// Where a potential simple key starts.
#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    line: usize,
    column: usize,
}

enum Stop {
    /// libyaml would stop here with a syntax error; the parser reports it.
    Syntax,
    /// The text is refused.
    Refused(ScanProblem),
}

struct Scanner<'t> {
    bytes: &'t [u8],
    pos: usize,
    /// 0-based line of `pos`.
    line: usize,
    /// 0-based column of `pos`, in characters (libyaml's marks count characters).
    column: usize,
    max_depth: usize,
    flow_level: usize,
    /// The current block indentation (-1 at the top), libyaml's `parser.indent`.
    indent: isize,
    /// Enclosing block indentations.
    indents: Vec<isize>,
    simple_key_allowed: bool,
    /// The potential simple key of the innermost flow level (or of the block context).
    simple_key: Option<Mark>,
    /// Potential simple keys of the enclosing flow levels; only the innermost is ever looked
    /// at, which is what keeps this pass linear where libyaml walks them all.
    saved_keys: Vec<Option<Mark>>,
}

impl Scanner<'_> {
    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn is(&self, offset: usize, byte: u8) -> bool {
        self.peek_at(offset) == Some(byte)
    }

    /// A line break (`\r`, `\n`, NEL, LS, PS) at `offset`.
    fn is_break_at(&self, offset: usize) -> bool {
        match self.peek_at(offset) {
            Some(b'\r' | b'\n') => true,
            Some(0xC2) => self.peek_at(offset + 1) == Some(0x85),
            Some(0xE2) => {
                self.peek_at(offset + 1) == Some(0x80)
                    && matches!(self.peek_at(offset + 2), Some(0xA8 | 0xA9))
            }
            _ => false,
        }
    }

    fn is_blank_at(&self, offset: usize) -> bool {
        matches!(self.peek_at(offset), Some(b' ' | b'\t'))
    }

    /// Blank, line break or end of text.
    fn is_blankz_at(&self, offset: usize) -> bool {
        self.peek_at(offset).is_none() || self.is_blank_at(offset) || self.is_break_at(offset)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Moves past one character that is not a line break.
    fn skip(&mut self) {
        let Some(first) = self.peek_at(0) else {
            return;
        };
        let width = match first {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        self.pos = (self.pos + width).min(self.bytes.len());
        self.column += 1;
    }

    /// Moves past one line break (`\r\n` counts as one).
    fn skip_line(&mut self) {
        if self.is(0, b'\r') && self.is(1, b'\n') {
            self.pos += 2;
        } else if self.is(0, b'\r') || self.is(0, b'\n') {
            self.pos += 1;
        } else if self.is(0, 0xC2) {
            self.pos += 2;
        } else if self.is(0, 0xE2) {
            self.pos += 3;
        } else {
            return;
        }
        self.line += 1;
        self.column = 0;
    }

    /// Moves past one character, line break or not.
    fn advance(&mut self) {
        if self.is_break_at(0) {
            self.skip_line();
        } else {
            self.skip();
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            column: self.column,
        }
    }

    fn refuse(&self, at: Mark, message: String) -> Stop {
        Stop::Refused(ScanProblem {
            line: at.line + 1,
            column: at.column + 1,
            message,
        })
    }

    /// Refuses, at `at`, a collection that opens deeper than the limit.
    fn check_depth(&self, at: Mark) -> Result<(), Stop> {
        if self.indents.len() + self.flow_level > self.max_depth {
            return Err(self.refuse(at, format!("nesting deeper than {} levels", self.max_depth)));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), Stop> {
        loop {
            self.scan_to_next_token();
            self.unroll_indent(self.column as isize);
            let Some(byte) = self.peek_at(0) else {
                return Ok(());
            };
            let next_is_blankz = self.is_blankz_at(1);
            match byte {
                b'%' if self.column == 0 => self.directive()?,
                b'-' | b'.'
                    if self.column == 0
                        && self.is(1, byte)
                        && self.is(2, byte)
                        && self.is_blankz_at(3) =>
                {
                    // A document marker closes every block collection.
                    self.unroll_indent(-1);
                    self.simple_key = None;
                    self.simple_key_allowed = false;
                    (0..3).for_each(|_| self.skip());
                }
                b'[' | b'{' => {
                    self.save_simple_key();
                    self.saved_keys.push(self.simple_key.take());
                    self.flow_level += 1;
                    self.check_depth(self.mark())?;
                    self.simple_key_allowed = true;
                    self.skip();
                }
                b']' | b'}' => {
                    self.simple_key = None;
                    if self.flow_level > 0 {
                        self.flow_level -= 1;
                        self.simple_key = self.saved_keys.pop().flatten();
                    }
                    self.simple_key_allowed = false;
                    self.skip();
                }
                b',' => {
                    self.simple_key = None;
                    self.simple_key_allowed = true;
                    self.skip();
                }
                b'-' if next_is_blankz => {
                    if self.flow_level == 0 {
                        if !self.simple_key_allowed {
                            return Err(Stop::Syntax);
                        }
                        self.roll_indent(self.mark())?;
                    }
                    self.simple_key = None;
                    self.simple_key_allowed = true;
                    self.skip();
                }
                b'?' if self.flow_level > 0 || next_is_blankz => {
                    if self.flow_level == 0 {
                        if !self.simple_key_allowed {
                            return Err(Stop::Syntax);
                        }
                        self.roll_indent(self.mark())?;
                    }
                    self.simple_key = None;
                    self.simple_key_allowed = self.flow_level == 0;
                    self.skip();
                }
                b':' if self.flow_level > 0 || next_is_blankz => self.value()?,
                b'*' | b'&' => {
                    self.save_simple_key();
                    self.simple_key_allowed = false;
                    self.skip();
                    while self.peek_at(0).is_some_and(|byte| {
                        byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
                    }) {
                        self.skip();
                    }
                }
                b'!' => {
                    self.save_simple_key();
                    self.simple_key_allowed = false;
                    self.tag()?;
                }
                b'|' | b'>' if self.flow_level == 0 => {
                    self.simple_key = None;
                    self.simple_key_allowed = true;
                    self.block_scalar()?;
                }
                b'\'' | b'"' => {
                    self.save_simple_key();
                    self.simple_key_allowed = false;
                    self.quoted_scalar(byte)?;
                }
                _ if self.starts_plain_scalar(byte) => {
                    self.save_simple_key();
                    self.simple_key_allowed = false;
                    self.plain_scalar()?;
                }
                // libyaml: "found character that cannot start any token".
                _ => return Err(Stop::Syntax),
            }
        }
    }

    fn starts_plain_scalar(&self, byte: u8) -> bool {
        let indicator = matches!(
            byte,
            b'-' | b'?'
                | b':'
                | b','
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'#'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
        );
        !(self.is_blankz_at(0) || indicator)
            || (byte == b'-' && !self.is_blank_at(1))
            || (self.flow_level == 0 && matches!(byte, b'?' | b':') && !self.is_blankz_at(1))
    }

    /// Skips spaces, comments and line breaks up to the next token.
    fn scan_to_next_token(&mut self) {
        loop {
            if self.column == 0 && self.bytes[self.pos..].starts_with("\u{feff}".as_bytes()) {
                self.skip();
            }
            while self.is(0, b' ')
                || ((self.flow_level > 0 || !self.simple_key_allowed) && self.is(0, b'\t'))
            {
                self.skip();
            }
            if self.is(0, b'#') {
                while !self.at_end() && !self.is_break_at(0) {
                    self.skip();
                }
            }
            if !self.is_break_at(0) {
                return;
            }
            self.skip_line();
            if self.flow_level == 0 {
                self.simple_key_allowed = true;
            }
        }
    }

    fn save_simple_key(&mut self) {
        if self.simple_key_allowed {
            self.simple_key = Some(self.mark());
        }
    }

    /// Opens a block collection at the column of `at` when it is deeper than the current one.
    fn roll_indent(&mut self, at: Mark) -> Result<(), Stop> {
        let column = at.column as isize;
        if self.flow_level == 0 && self.indent < column {
            self.indents.push(self.indent);
            self.indent = column;
            self.check_depth(at)?;
        }
        Ok(())
    }

    fn unroll_indent(&mut self, column: isize) {
        if self.flow_level > 0 {
            return;
        }
        while self.indent > column {
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    /// A `:` value indicator: the pending simple key (if still on this line and close enough)
    /// opens a block mapping at its column, as libyaml does.
    fn value(&mut self) -> Result<(), Stop> {
        let key = self
            .simple_key
            .take()
            .filter(|key| key.line == self.line && key.pos + SIMPLE_KEY_MAX_BYTES >= self.pos);
        match key {
            Some(key) => {
                self.roll_indent(key)?;
                self.simple_key_allowed = false;
            }
            None => {
                if self.flow_level == 0 {
                    if !self.simple_key_allowed {
                        return Err(Stop::Syntax);
                    }
                    self.roll_indent(self.mark())?;
                }
                self.simple_key_allowed = self.flow_level == 0;
            }
        }
        self.skip();
        Ok(())
    }

    /// `%YAML` is fine; `%TAG` could make `!x!` mean a core-schema tag, so it is refused.
    fn directive(&mut self) -> Result<(), Stop> {
        let start = self.mark();
        let rest = &self.bytes[self.pos..];
        if rest.starts_with(b"%TAG") && (rest.len() == 4 || matches!(rest[4], b' ' | b'\t')) {
            return Err(self.refuse(
                start,
                "`%TAG` directives are not supported in CloudFormation templates".to_owned(),
            ));
        }
        while !self.at_end() && !self.is_break_at(0) {
            self.skip();
        }
        Ok(())
    }

    /// A tag: `!`, `!Local`, `!!core` (only the harmless ones) or `!<verbatim>` (refused).
    fn tag(&mut self) -> Result<(), Stop> {
        let start = self.mark();
        if self.is(1, b'<') {
            return Err(self.refuse(
                start,
                "verbatim YAML tags (`!<...>`) are not supported in CloudFormation templates"
                    .to_owned(),
            ));
        }
        self.skip();
        let is_tag_byte =
            |byte: u8| byte.is_ascii_alphanumeric() || b"-_;/?:@&=+$.%!~*'()".contains(&byte);
        while self.peek_at(0).is_some_and(is_tag_byte) {
            self.skip();
        }
        let tag = String::from_utf8_lossy(&self.bytes[start.pos..self.pos]);
        if let Some(core) = tag.strip_prefix("!!")
            && !HARMLESS_CORE_TAGS.contains(&core)
        {
            return Err(self.refuse(
                start,
                format!("YAML tag `{tag}` is not supported in CloudFormation templates"),
            ));
        }
        Ok(())
    }

    /// A single- or double-quoted scalar, possibly over several lines.
    fn quoted_scalar(&mut self, quote: u8) -> Result<(), Stop> {
        self.skip();
        loop {
            if self.column == 0 && self.document_marker_here() {
                return Err(Stop::Syntax);
            }
            match self.peek_at(0) {
                None => return Err(Stop::Syntax),
                Some(b'\'') if quote == b'\'' && self.is(1, b'\'') => {
                    self.skip();
                    self.skip();
                }
                Some(byte) if byte == quote => {
                    self.skip();
                    return Ok(());
                }
                Some(b'\\') if quote == b'"' => {
                    self.skip();
                    self.advance();
                }
                Some(_) => self.advance(),
            }
        }
    }

    fn document_marker_here(&self) -> bool {
        let rest = &self.bytes[self.pos..];
        (rest.starts_with(b"---") || rest.starts_with(b"...")) && self.is_blankz_at(3)
    }

    /// A plain scalar; in block context it continues on lines indented deeper than the
    /// current block indentation.
    fn plain_scalar(&mut self) -> Result<(), Stop> {
        let indent = self.indent + 1;
        let mut leading_blanks = false;
        loop {
            if self.column == 0 && self.document_marker_here() {
                break;
            }
            if self.is(0, b'#') {
                break;
            }
            while !self.is_blankz_at(0) {
                let byte = self.peek_at(0);
                if self.flow_level > 0
                    && byte == Some(b':')
                    && matches!(
                        self.peek_at(1),
                        Some(b',' | b'?' | b'[' | b']' | b'{' | b'}')
                    )
                {
                    return Err(Stop::Syntax);
                }
                let ends_here = (byte == Some(b':') && self.is_blankz_at(1))
                    || (self.flow_level > 0
                        && matches!(byte, Some(b',' | b'[' | b']' | b'{' | b'}')));
                if ends_here {
                    break;
                }
                self.skip();
            }
            if !(self.is_blank_at(0) || self.is_break_at(0)) {
                break;
            }
            while self.is_blank_at(0) || self.is_break_at(0) {
                if self.is_break_at(0) {
                    leading_blanks = true;
                }
                self.advance();
            }
            if self.flow_level == 0 && (self.column as isize) < indent {
                break;
            }
        }
        if leading_blanks {
            self.simple_key_allowed = true;
        }
        Ok(())
    }

    /// A `|` or `>` block scalar: its header, then every line indented at least as deep as its
    /// content (given by an indentation indicator or by the first non-empty line).
    fn block_scalar(&mut self) -> Result<(), Stop> {
        self.skip();
        let mut increment = 0isize;
        for _ in 0..2 {
            match self.peek_at(0) {
                Some(b'+' | b'-') => self.skip(),
                Some(b'0') => return Err(Stop::Syntax),
                Some(digit @ b'1'..=b'9') => {
                    increment = isize::from(digit - b'0');
                    self.skip();
                }
                _ => break,
            }
        }
        while self.is_blank_at(0) {
            self.skip();
        }
        if self.is(0, b'#') {
            while !self.at_end() && !self.is_break_at(0) {
                self.skip();
            }
        }
        if !self.at_end() && !self.is_break_at(0) {
            return Err(Stop::Syntax);
        }
        self.skip_line();
        let mut indent = if increment > 0 {
            if self.indent >= 0 {
                self.indent + increment
            } else {
                increment
            }
        } else {
            0
        };
        self.block_scalar_breaks(&mut indent)?;
        while self.column as isize == indent && !self.at_end() {
            while !self.at_end() && !self.is_break_at(0) {
                self.skip();
            }
            if self.at_end() {
                break;
            }
            self.skip_line();
            self.block_scalar_breaks(&mut indent)?;
        }
        Ok(())
    }

    /// Skips the indentation and empty lines of a block scalar; fixes the content indentation
    /// from the first non-empty line when no indicator gave it.
    fn block_scalar_breaks(&mut self, indent: &mut isize) -> Result<(), Stop> {
        let mut max_indent = 0isize;
        loop {
            while (*indent == 0 || (self.column as isize) < *indent) && self.is(0, b' ') {
                self.skip();
            }
            max_indent = max_indent.max(self.column as isize);
            if (*indent == 0 || (self.column as isize) < *indent) && self.is(0, b'\t') {
                return Err(Stop::Syntax);
            }
            if !self.is_break_at(0) {
                break;
            }
            self.skip_line();
        }
        if *indent == 0 {
            *indent = max_indent.max(self.indent + 1).max(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ok`, or the problem as `line:column: message`.
    fn scan(text: &str) -> String {
        match check(text, 4) {
            Ok(()) => "ok".to_owned(),
            Err(problem) => format!("{}:{}: {}", problem.line, problem.column, problem.message),
        }
    }

    #[test]
    fn flow_depth_is_counted() {
        assert_eq!(scan("a: [[[1]]]"), "ok");
        assert_eq!(scan("a: [[[[1]]]]"), "1:7: nesting deeper than 4 levels");
        assert_eq!(scan("a: {b: [{c: 1}]}"), "ok");
        assert_eq!(
            scan("a: {b: [{c: [1]}]}"),
            "1:13: nesting deeper than 4 levels"
        );
    }

    #[test]
    fn block_depth_is_counted() {
        assert_eq!(scan("a:\n  b:\n    c: 1"), "ok");
        assert_eq!(
            scan("a:\n  b:\n    c:\n      d:\n        e: 1"),
            "5:9: nesting deeper than 4 levels"
        );
        assert_eq!(scan("- - - - x"), "ok");
        assert_eq!(scan("- - - - - x"), "1:9: nesting deeper than 4 levels");
        assert_eq!(scan("a:\n  b: [[x]]"), "ok");
        assert_eq!(
            scan("a:\n  b: [[[x]]]"),
            "2:8: nesting deeper than 4 levels"
        );
    }

    #[test]
    fn brackets_inside_scalars_and_comments_do_not_count() {
        assert_eq!(scan("a: '[[[[[['"), "ok");
        assert_eq!(scan("a: \"[[[[[[\\\"[[[\""), "ok");
        assert_eq!(scan("a: x[[[[[[ y"), "ok");
        assert_eq!(scan("a: 1 # [[[[[[[\nb: 2"), "ok");
        assert_eq!(scan("a: |\n  [[[[[[\n  {{{{{{\nb: 1"), "ok");
        assert_eq!(scan("a: >-\n  [[[[[[\n\n  [[[[\nb: 1"), "ok");
        assert_eq!(scan("a: plain\n  [[[[[[ continued\nb: 1"), "ok");
        assert_eq!(scan("a: ['it''s [[[[[', \"x\"]"), "ok");
        assert_eq!(scan("a: [don't, [x]]"), "ok");
    }

    #[test]
    fn block_scalars_end_where_the_indentation_does() {
        // `other` is a sibling key of `key`, not block scalar content.
        assert_eq!(
            scan("- key: |\n    text\n  other: [[[[1]]]]"),
            "3:12: nesting deeper than 4 levels"
        );
        assert_eq!(
            scan("a: |2\n   x\n  y\nb: [[[[1]]]]"),
            "4:7: nesting deeper than 4 levels"
        );
    }

    #[test]
    fn plain_scalar_continuations_are_text() {
        // In YAML the second line continues the scalar (`plain 'x`), so the quote opens nothing.
        assert_eq!(
            scan("a: plain\n  'x\nb: [[[[1]]]]"),
            "3:7: nesting deeper than 4 levels"
        );
        assert_eq!(
            scan("a:\n  x\n  'y\nb: [[[[1]]]]"),
            "4:7: nesting deeper than 4 levels"
        );
    }

    #[test]
    fn unsupported_tags_are_refused() {
        assert_eq!(
            scan("Type: !!binary QVdT"),
            "1:7: YAML tag `!!binary` is not supported in CloudFormation templates"
        );
        assert_eq!(
            scan("a: [!!timestamp 2001-01-01]"),
            "1:5: YAML tag `!!timestamp` is not supported in CloudFormation templates"
        );
        assert_eq!(
            scan("a: !<tag:yaml.org,2002:binary> x"),
            "1:4: verbatim YAML tags (`!<...>`) are not supported in CloudFormation templates"
        );
        assert_eq!(
            scan("%TAG !e! tag:yaml.org,2002:\n---\na: !e!binary x"),
            "1:1: `%TAG` directives are not supported in CloudFormation templates"
        );
        assert_eq!(scan("a: !!str 1\nb: !Ref X\nc: ! x\nd: !!int '3'"), "ok");
        assert_eq!(scan("a: wow!! !!binary\nb: 'x !!binary'"), "ok");
    }

    #[test]
    fn syntax_errors_are_left_to_the_parser() {
        assert_eq!(scan("a: 'unterminated [[[[[["), "ok");
        assert_eq!(scan("a: @x"), "ok");
        assert_eq!(scan("a: |0\n x"), "ok");
    }

    #[test]
    fn deep_nesting_is_refused_in_linear_time() {
        let deep = format!("a: {}1{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert_eq!(scan(&deep), "1:7: nesting deeper than 4 levels");
        let wide = "a: [x, [y], {z: 1}, 'q']\n".repeat(100_000);
        assert_eq!(scan(&wide), "ok");
    }

    proptest::proptest! {
        /// A nested flow collection of known depth, surrounded by scalars full of brackets and
        /// quotes, is measured exactly whenever the YAML parser accepts the document.
        #[test]
        fn depth_is_exact_amid_noise(
            depth in 3usize..10,
            noise in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a: '[[{'\n", "b: \"]]\\\"[\"\n", "c: x[[y\n", "d: |\n  [[[[\n  '\n", "e: 1 # [[[\n",
                    "f: >\n  {{{\n", "g: plain\n  'quoted\n", "h: [don't, x]\n", "i: !Ref X\n",
                    "j:\n  - [a, b]\n  - 'c[d'\n", "k: &x [y]\nl: *x\n", "m: 'it''s'\n",
                ]),
                0..6,
            ),
        ) {
            let nested = format!("z: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
            let mut text: String = noise.concat();
            text.push_str(&nested);
            proptest::prop_assume!(serde_yaml::from_str::<serde_yaml::Value>(&text).is_ok());
            // The root mapping is one level, the nested sequences the rest.
            let too_deep = check(&text, depth).is_err();
            let fits = check(&text, depth + 1).is_ok();
            proptest::prop_assert!(too_deep && fits, "{text:?}");
        }

        #[test]
        fn never_panics(text in "([\\[\\]{}'\":#|>!&*%,?\\- \n\t]|a|é|\u{feff}|\r\n|---|\\.\\.\\.){0,64}") {
            let _ = check(&text, 3);
        }
    }
}
