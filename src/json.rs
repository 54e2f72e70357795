//! JSON validity exactly as `JSON.parse` judges it (RFC 8259 grammar, no nesting limit).
//!
//! Init removes documents that fail this check, so it must never call a valid document
//! corrupt. serde_json is stricter than `JSON.parse` in ways that would delete real data
//! (a nesting limit of 128, numbers beyond f64 range, lone surrogate escapes), hence this
//! small non-recursive validator.

/// Whether `JSON.parse` would accept `text` (leading and trailing JSON whitespace allowed).
pub fn is_valid_json(text: &[u8]) -> bool {
    let mut cursor = Cursor { text, pos: 0 };
    let mut open: Vec<u8> = Vec::new();
    cursor.skip_ws();
    loop {
        // A value is expected here.
        match cursor.peek() {
            Some(b'{') => {
                cursor.pos += 1;
                cursor.skip_ws();
                if !cursor.eat(b'}') {
                    open.push(b'}');
                    if !cursor.member_key() {
                        return false;
                    }
                    continue;
                }
            }
            Some(b'[') => {
                cursor.pos += 1;
                cursor.skip_ws();
                if !cursor.eat(b']') {
                    open.push(b']');
                    continue;
                }
            }
            Some(b'"') => {
                if !cursor.string() {
                    return false;
                }
            }
            Some(b't') => {
                if !cursor.literal(b"true") {
                    return false;
                }
            }
            Some(b'f') => {
                if !cursor.literal(b"false") {
                    return false;
                }
            }
            Some(b'n') => {
                if !cursor.literal(b"null") {
                    return false;
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                if !cursor.number() {
                    return false;
                }
            }
            _ => return false,
        }
        // A value just ended: close containers until one expects another element.
        loop {
            cursor.skip_ws();
            let Some(&close) = open.last() else {
                return cursor.pos == text.len();
            };
            if cursor.eat(b',') {
                cursor.skip_ws();
                if close == b'}' && !cursor.member_key() {
                    return false;
                }
                break;
            }
            if !cursor.eat(close) {
                return false;
            }
            open.pop();
        }
    }
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// `"key"` then `:`, with whitespace, leaving the cursor at the member's value.
    fn member_key(&mut self) -> bool {
        if !self.string() {
            return false;
        }
        self.skip_ws();
        if !self.eat(b':') {
            return false;
        }
        self.skip_ws();
        true
    }

    fn digits(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        // Integer part: a lone 0, or digits not starting with 0.
        let integer = self.eat(b'0') || (matches!(self.peek(), Some(b'1'..=b'9')) && self.digits());
        if !integer {
            return false;
        }
        if self.eat(b'.') && !self.digits() {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !self.digits() {
                return false;
            }
        }
        true
    }

    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            match self.peek() {
                None => return false,
                Some(b'"') => {
                    self.pos += 1;
                    return true;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                if !matches!(self.peek(), Some(b) if b.is_ascii_hexdigit()) {
                                    return false;
                                }
                                self.pos += 1;
                            }
                        }
                        _ => return false,
                    }
                }
                // JSON forbids raw control characters inside strings.
                Some(0x00..=0x1f) => return false,
                Some(_) => self.pos += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_json;

    #[test]
    fn accepts_what_json_parse_accepts() {
        for ok in [
            "null",
            " true ",
            "false",
            "0",
            "-0.5e+10",
            "1E-2",
            "1e400",
            "\"\"",
            "\"\\ud800 lone surrogate\"",
            "\"caf\u{e9} \\u00e9 \\n\"",
            "[]",
            "{}",
            "[1,[2,[3,{\"a\":[]}]]]",
            "{\"a\" : 1 ,\n\"b\":{\"c\":null}}\r\n",
            "{\"priceOpen\":42000.5,\"id\":\"x\",\"minuteEstimatedTime\":null}",
        ] {
            assert!(is_valid_json(ok.as_bytes()), "should accept {ok:?}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(is_valid_json(deep.as_bytes()));
    }

    #[test]
    fn rejects_what_json_parse_rejects() {
        for bad in [
            "",
            " ",
            "nul",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "NaN",
            "Infinity",
            "'x'",
            "\"unterminated",
            "\"tab\there\"",
            "\"\\x\"",
            "\"\\u12\"",
            "[1] [2]",
            "{\"a\":1}}",
            "\u{feff}{}",
            "[\"a\" \"b\"]",
            "{\"a\":1 \"b\":2}",
        ] {
            assert!(!is_valid_json(bad.as_bytes()), "should reject {bad:?}");
        }
        let truncated = "{\"a\":[1,2,{\"b\":\"c\"}]}";
        for end in 0..truncated.len() {
            assert!(!is_valid_json(&truncated.as_bytes()[..end]));
        }
    }
}
