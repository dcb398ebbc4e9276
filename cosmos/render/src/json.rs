//! A fast path for parsing rendered Marathon JSON into `serde_json::Value`.
//!
//! It accepts a strict subset of what `serde_json::from_str` accepts and builds the identical
//! value (same maps in the same order, same numbers, same strings). Whenever it meets anything
//! it is not sure about (an error, a float, an integer at the edge of `i64`/`u64`, a lone
//! surrogate, deep nesting), it gives up and the caller parses with serde_json, so errors and
//! corner cases behave exactly as serde_json's.

use serde_json::{Map, Number, Value};

/// Nesting beyond this is left to serde_json (which enforces its own limit of 128).
const MAX_DEPTH: usize = 100;

type Scratch = (Vec<(String, Value)>, Vec<Value>);

thread_local! {
    /// The parser's scratch stacks, kept per thread (they are empty between parses).
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Parses `text` as one JSON document, or `None` when the fast path does not apply.
pub(crate) fn parse(text: &str) -> Option<Value> {
    SCRATCH.with(|scratch| {
        let (entries, items) = match scratch.try_borrow_mut() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => Scratch::default(),
        };
        let mut p = Parser {
            s: text,
            b: text.as_bytes(),
            i: 0,
            depth: 0,
            entries,
            items,
        };
        let v = p.value();
        p.ws();
        let done = p.i == p.b.len();
        let (mut entries, mut items) = (p.entries, p.items);
        entries.clear();
        items.clear();
        if entries.capacity() <= 4096 && items.capacity() <= 4096 {
            if let Ok(mut s) = scratch.try_borrow_mut() {
                *s = (entries, items);
            }
        }
        v.filter(|_| done)
    })
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
    /// Scratch stacks for the members of the objects and arrays being parsed.
    entries: Vec<(String, Value)>,
    items: Vec<Value>,
}

impl Parser<'_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Value::String),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Option<Value> {
        if self.b.get(self.i..self.i + word.len())? == word.as_bytes() {
            self.i += word.len();
            Some(v)
        } else {
            None
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let start = self.entries.len();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let k = self.string()?;
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                let v = self.value()?;
                self.entries.push((k, v));
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let m: Map<String, Value> = self.entries.drain(start..).collect();
        Some(Value::Object(m))
    }

    fn array(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.i += 1;
        let start = self.items.len();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                let v = self.value()?;
                self.items.push(v);
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let a: Vec<Value> = self.items.drain(start..).collect();
        Some(Value::Array(a))
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let start = self.i;
        // Fast scan to the closing quote, an escape or a control character.
        let rest = self.b.get(start..)?;
        let n = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        self.i = start + n;
        match self.peek()? {
            b'"' => {
                let s = self.s.get(start..self.i)?.to_owned();
                self.i += 1;
                Some(s)
            }
            b'\\' => {
                let mut out = String::with_capacity(n + 16);
                out.push_str(self.s.get(start..self.i)?);
                self.escaped_rest(out)
            }
            _ => None,
        }
    }

    /// The rest of a string that contains escapes, from a backslash.
    fn escaped_rest(&mut self, mut out: String) -> Option<String> {
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let c = self.hex4()?;
                            // Surrogates (pairs or lone) are left to serde_json.
                            out.push(char::from_u32(c)?);
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    let start = self.i;
                    let rest = self.b.get(start..)?;
                    let n = rest
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
                    self.i = start + n;
                    out.push_str(self.s.get(start..self.i)?);
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// Integers that fit `i64` (negative, non-zero) or `u64`; floats and edge cases go through
    /// serde_json's own number parser so that every bit matches.
    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let neg = self.peek()? == b'-';
        if neg {
            self.i += 1;
        }
        let first = self.peek()?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut v: u64 = 0;
        let mut overflow = false;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            match v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
            {
                Some(x) => v = x,
                None => overflow = true,
            }
            self.i += 1;
        }
        let digits = self.i - start - usize::from(neg);
        if first == b'0' && digits > 1 {
            return None;
        }
        let is_float = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if !is_float && !overflow {
            if !neg {
                return Some(Value::Number(Number::from(v)));
            }
            if v != 0 && v <= i64::MAX as u64 {
                return Some(Value::Number(Number::from(-(v as i64))));
            }
        }
        // Delegate the token to serde_json.
        if is_float {
            if self.peek() == Some(b'.') {
                self.i += 1;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
            if let Some(b'e' | b'E') = self.peek() {
                self.i += 1;
                if let Some(b'+' | b'-') = self.peek() {
                    self.i += 1;
                }
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
            }
        }
        let token = self.s.get(start..self.i)?;
        match serde_json::from_str::<Value>(token).ok()? {
            n @ Value::Number(_) => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(text: &str) {
        let serde: Option<Value> = serde_json::from_str(text).ok();
        // `None` falls back to serde_json
        if let Some(v) = parse(text) {
            assert_eq!(Some(&v), serde.as_ref(), "{text}");
        }
        if let (Some(v), Some(s)) = (parse(text), serde) {
            // same key order, same number representation
            assert_eq!(v.to_string(), s.to_string(), "{text}");
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        for t in [
            r#"{"a": 1, "b": [true, false, null], "c": {"d": "e\"\\\/\b\f\n\r\t\u00e9x"}}"#,
            r#"{"z": 1, "a": 2, "z": 3}"#,
            "[1, -1, 0, -0, 0.5, 1e3, 1E-7, -2.5e+10, 18446744073709551615, 18446744073709551616]",
            "[-9223372036854775808, -9223372036854775809, 9223372036854775807, 01, 1., .5]",
            r#""\ud83d\ude00" "#,
            r#""\ud83d" "#,
            "\"a\u{1}\"",
            "{} {}",
            "{\"a\" 1}",
            "[1,]",
            "{\"a\":1,}",
            "  {\"é\": \"ü\"}  ",
            "nul",
            "[[[[[[]]]]]]",
            "",
            "\u{feff}{}",
        ] {
            same(t);
        }
        let deep = "[".repeat(300) + &"]".repeat(300);
        assert!(parse(&deep).is_none());
    }
}
