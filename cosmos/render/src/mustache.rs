//! A mustache engine that follows mustache.java as Cosmos configures it.
//!
//! Cosmos (`PackageDefinitionRenderer`) converts the JSON context to Java objects before handing it
//! to mustache.java 0.9.6 with HTML escaping switched off. That conversion defines the output text:
//!
//! * strings are JSON-escaped and lose their surrounding quotes, except strings that are array
//!   elements, which keep them;
//! * numbers print as `int` when integral and within `i32`, else as Java `Double.toString`;
//! * `null` prints nothing, booleans print `true`/`false`;
//! * arrays print as Java `List.toString` (`[a, b]`), objects as `Map.toString` (`{k=v}`);
//! * sections: `null`, `false`, `""` and empty lists are falsey, everything else (0, `{}`) truthy;
//! * `list.isEmpty` / `list.size` resolve like the `java.util.List` methods;
//! * the `asJson` helper: `{{#asJson}}key{{/asJson}}` emits the raw text of the top-level string
//!   option `key` (re-processed as a template), or `null`.
//!
//! Rendering works directly on `serde_json::Value`; the Java conversion happens when text is
//! written. Templates are parsed once ([`Template::parse`]) and can be rendered many times.

use serde_json::Value;
use std::fmt::Write as _;

/// A template that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mustache syntax error at byte {offset}: {message}")]
pub struct TemplateError {
    /// Byte offset in the template text where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// `{{.}}`
    Implicit,
    /// `{{a.b.c}}`
    Path(Path),
}

/// A name resolved at parse time: the whole text with its hash and, when it is dotted, its
/// segments (spans of the text, each with its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    text: Box<str>,
    hash: u64,
    /// Empty when the name has no dot.
    segs: Box<[Seg]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    hash: u64,
    start: u32,
    end: u32,
}

impl Path {
    fn seg(&self, s: &Seg) -> &str {
        self.text
            .get(s.start as usize..s.end as usize)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
enum Node {
    /// A span of the template source.
    Text(std::ops::Range<usize>),
    Var(Name),
    Section {
        name: Name,
        inverted: bool,
        children: Vec<Node>,
        /// The unrendered body text, for lambdas (`asJson`).
        raw: String,
    },
}

/// A parsed mustache template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// The source text (text nodes are spans of it, so rendering reads it front to back).
    src: Box<str>,
    /// Length of the source text (output buffer size hint).
    len: usize,
}

/// Depth limit for nested sections and for `asJson` re-processing (keeps hostile input from
/// overflowing the stack).
const MAX_DEPTH: usize = 64;

static TRUE: CVal = CVal::Bool(true);

impl Template {
    /// Parses mustache text. Supports variables, `{{{x}}}`, `{{&x}}`, sections, inverted
    /// sections, comments and set-delimiter tags. Partials are rejected (Cosmos has no loader).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parser = Parser {
            src: text,
            pos: 0,
            open: "{{".to_string(),
            close: "}}".to_string(),
        };
        let (nodes, end) = parser.parse_nodes(None, 0)?;
        debug_assert!(end.is_none());
        Ok(Template {
            nodes,
            src: text.into(),
            len: text.len(),
        })
    }

    /// Renders against `context` (normally a JSON object).
    pub fn render(&self, context: &Value) -> String {
        self.render_context(&Context::new(context))
    }

    /// Renders against `context`, appending to `out`.
    pub fn render_into(&self, context: &Value, out: &mut String) {
        self.render_context_into(&Context::new(context), out);
    }

    /// Renders against a compiled context (the fast path when the same context is rendered
    /// more than once).
    pub fn render_context(&self, context: &Context) -> String {
        let mut out = String::with_capacity(self.len + self.len / 4);
        self.render_context_into(context, &mut out);
        out
    }

    /// Renders against a compiled context, appending to `out`.
    pub fn render_context_into(&self, context: &Context, out: &mut String) {
        let root = &context.root;
        let mut stack = Vec::with_capacity(8);
        stack.push(Frame {
            value: root,
            in_array: false,
        });
        render_nodes(&self.nodes, &self.src, &mut stack, root, out, 0);
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    open: String,
    close: String,
}

impl Parser<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> TemplateError {
        TemplateError {
            offset,
            message: message.into(),
        }
    }

    /// Parses until end of input (when `section` is None) or the matching close tag.
    /// Returns the nodes and, for sections, the byte offset where the close tag starts.
    fn parse_nodes(
        &mut self,
        section: Option<(&Name, usize)>,
        depth: usize,
    ) -> Result<(Vec<Node>, Option<usize>), TemplateError> {
        if depth > MAX_DEPTH {
            return Err(self.err(self.pos, "sections nested too deeply"));
        }
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(idx) = rest.find(self.open.as_str()) else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(self.pos..self.src.len()));
                }
                self.pos = self.src.len();
                if let Some((name, start)) = section {
                    return Err(self.err(
                        start,
                        format!("section '{}' is never closed", display_name(name)),
                    ));
                }
                return Ok((nodes, None));
            };
            if idx > 0 {
                nodes.push(Node::Text(self.pos..self.pos + idx));
            }
            let tag_start = self.pos + idx;
            let after_open = tag_start + self.open.len();
            let body = &self.src[after_open..];
            // Triple mustache: only with the default delimiters.
            if self.open == "{{" && body.starts_with('{') {
                let Some(end) = body.find("}}}") else {
                    return Err(self.err(tag_start, "unclosed '{{{' tag"));
                };
                let name = parse_name(body[1..end].trim())
                    .ok_or_else(|| self.err(tag_start, "empty tag name"))?;
                nodes.push(Node::Var(name));
                self.pos = after_open + end + 3;
                continue;
            }
            let Some(end) = body.find(self.close.as_str()) else {
                return Err(self.err(tag_start, format!("unclosed '{}' tag", self.open)));
            };
            let content = &body[..end];
            let tag_end = after_open + end + self.close.len();
            self.pos = tag_end;
            let (sigil, inner) = match content.chars().next() {
                Some(c @ ('#' | '^' | '/' | '!' | '>' | '&' | '=' | '<' | '$')) => {
                    (Some(c), &content[c.len_utf8()..])
                }
                _ => (None, content),
            };
            match sigil {
                Some('!') => {}
                Some('=') => {
                    let inner = inner.trim();
                    let Some(inner) = inner.strip_suffix('=') else {
                        return Err(self.err(tag_start, "set-delimiter tag must end with '='"));
                    };
                    let parts: Vec<&str> = inner.split_whitespace().collect();
                    match parts.as_slice() {
                        [o, c] if !o.contains('=') && !c.contains('=') => {
                            self.open = (*o).to_string();
                            self.close = (*c).to_string();
                        }
                        _ => {
                            return Err(self.err(tag_start, "invalid set-delimiter tag"));
                        }
                    }
                }
                Some('>') | Some('<') | Some('$') => {
                    return Err(self.err(
                        tag_start,
                        format!(
                            "partials and template inheritance are not supported: '{}'",
                            content.trim()
                        ),
                    ));
                }
                Some('#') | Some('^') => {
                    let name = parse_name(inner.trim())
                        .ok_or_else(|| self.err(tag_start, "empty section name"))?;
                    let body_start = self.pos;
                    let (children, close_at) =
                        self.parse_nodes(Some((&name, tag_start)), depth + 1)?;
                    // Only the asJson helper needs the unrendered body.
                    let raw = if matches!(&name, Name::Path(p) if &*p.text == "asJson") {
                        self.src[body_start..close_at.unwrap_or(body_start)].to_string()
                    } else {
                        String::new()
                    };
                    nodes.push(Node::Section {
                        name,
                        inverted: sigil == Some('^'),
                        children,
                        raw,
                    });
                }
                Some('/') => {
                    let name = parse_name(inner.trim());
                    match section {
                        Some((open_name, _)) if name.as_ref() == Some(open_name) => {
                            return Ok((nodes, Some(tag_start)));
                        }
                        Some((open_name, _)) => {
                            return Err(self.err(
                                tag_start,
                                format!(
                                    "closing tag '{}' does not match open section '{}'",
                                    inner.trim(),
                                    display_name(open_name)
                                ),
                            ));
                        }
                        None => {
                            return Err(self.err(
                                tag_start,
                                format!("closing tag '{}' without open section", inner.trim()),
                            ));
                        }
                    }
                }
                _ => {
                    // plain or `&` variable
                    let name = parse_name(inner.trim())
                        .ok_or_else(|| self.err(tag_start, "empty tag name"))?;
                    nodes.push(Node::Var(name));
                }
            }
        }
    }
}

fn parse_name(s: &str) -> Option<Name> {
    if s.is_empty() {
        return None;
    }
    if s == "." {
        return Some(Name::Implicit);
    }
    let segs: Box<[Seg]> = if s.contains('.') {
        let mut start = 0;
        s.split('.')
            .map(|seg| {
                let span = Seg {
                    hash: name_hash(seg),
                    start: start as u32,
                    end: (start + seg.len()) as u32,
                };
                start += seg.len() + 1;
                span
            })
            .collect()
    } else {
        Box::new([])
    };
    Some(Name::Path(Path {
        text: s.into(),
        hash: name_hash(s),
        segs,
    }))
}

fn display_name(n: &Name) -> String {
    match n {
        Name::Implicit => ".".to_string(),
        Name::Path(p) => p.text.to_string(),
    }
}

/// The hash of a name (or name segment) and of a context key: FxHash of the bytes. Names are
/// hashed once when the template is parsed, keys once when the context is compiled.
fn name_hash(s: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut h = rustc_hash::FxHasher::default();
    h.write(s.as_bytes());
    h.write_usize(s.len());
    h.finish()
}

/// A render context: a JSON value compiled for fast name lookup (keys pre-hashed, strings
/// pre-escaped). Build it once with [`Context::new`] and render many templates or many times
/// against it ([`Template::render_context`]).
#[derive(Debug)]
pub struct Context {
    root: CVal,
}

impl Context {
    /// Compiles a JSON value (normally an object) into a render context.
    pub fn new(value: &Value) -> Context {
        Context {
            root: CVal::from_value(value),
        }
    }
}

#[derive(Debug)]
enum CVal {
    Null,
    Bool(bool),
    /// The number as Java prints it ([`write_java_number`]).
    Number(Box<str>),
    /// The string JSON-escaped (without quotes), as `{{x}}` writes it.
    String(Box<str>),
    Array(Box<[CVal]>),
    Object(CObj),
}

/// An object: its keys in document order (for `Map.toString`), each with its hash and its
/// span in one contiguous text (so a lookup touches little memory), the values in the same
/// order, and a hash index for the larger objects.
#[derive(Debug)]
struct CObj {
    keys: Box<[KeyRef]>,
    key_text: Box<str>,
    values: Box<[CVal]>,
    /// Positions by key hash; only for objects above [`LINEAR_MAX`] entries.
    index: Option<Box<hashbrown::HashTable<u32>>>,
    /// Whether a key contains a dot (else a dotted name is never looked up whole).
    dotted_keys: bool,
}

#[derive(Debug, Clone, Copy)]
struct KeyRef {
    hash: u64,
    start: u32,
    end: u32,
}

/// Objects up to this size are searched by a linear scan of their key hashes.
const LINEAR_MAX: usize = 12;

impl CObj {
    fn key(&self, k: &KeyRef) -> &str {
        self.key_text
            .get(k.start as usize..k.end as usize)
            .unwrap_or_default()
    }

    fn get(&self, key: &str, hash: u64) -> Option<&CVal> {
        let i = match &self.index {
            None => self
                .keys
                .iter()
                .position(|k| k.hash == hash && self.key(k) == key)?,
            Some(t) => *t.find(hash, |&i| {
                self.keys
                    .get(i as usize)
                    .is_some_and(|k| self.key(k) == key)
            })? as usize,
        };
        self.values.get(i)
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &CVal)> {
        self.keys
            .iter()
            .map(|k| self.key(k))
            .zip(self.values.iter())
    }
}

impl CVal {
    fn from_value(v: &Value) -> CVal {
        match v {
            Value::Null => CVal::Null,
            Value::Bool(b) => CVal::Bool(*b),
            Value::Number(n) => {
                let mut t = String::new();
                write_java_number(n, &mut t);
                CVal::Number(t.into_boxed_str())
            }
            Value::String(s) => {
                let mut e = String::with_capacity(s.len());
                json_escape_into(s, &mut e);
                CVal::String(e.into_boxed_str())
            }
            Value::Array(a) => CVal::Array(a.iter().map(CVal::from_value).collect()),
            Value::Object(m) => {
                let mut key_text = String::with_capacity(m.keys().map(String::len).sum());
                let keys: Box<[KeyRef]> = m
                    .keys()
                    .map(|k| {
                        let start = key_text.len() as u32;
                        key_text.push_str(k);
                        KeyRef {
                            hash: name_hash(k),
                            start,
                            end: key_text.len() as u32,
                        }
                    })
                    .collect();
                let values: Box<[CVal]> = m.values().map(CVal::from_value).collect();
                let index = (keys.len() > LINEAR_MAX).then(|| {
                    let mut t = hashbrown::HashTable::with_capacity(keys.len());
                    for (i, k) in keys.iter().enumerate() {
                        t.insert_unique(k.hash, i as u32, |&j| {
                            keys.get(j as usize).map_or(0, |k| k.hash)
                        });
                    }
                    Box::new(t)
                });
                CVal::Object(CObj {
                    keys,
                    dotted_keys: key_text.contains('.'),
                    key_text: key_text.into_boxed_str(),
                    values,
                    index,
                })
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Frame<'a> {
    value: &'a CVal,
    /// Whether this value is an element of a JSON array (Cosmos keeps quotes on such strings).
    in_array: bool,
}

enum Resolved<'a> {
    Missing,
    Value(Frame<'a>),
    /// `list.isEmpty`
    Bool(bool),
    /// `list.size`
    Size(usize),
    /// The `asJson` helper.
    AsJson,
}

enum Member<'a> {
    Value(&'a CVal),
    Bool(bool),
    Size(usize),
    None,
}

/// A named member of a value: a map entry, or a `java.util.List` method (`isEmpty`, its bean
/// form `empty`, `size`).
fn member<'a>(v: &'a CVal, seg: &str, hash: u64) -> Member<'a> {
    match v {
        CVal::Object(m) => m.get(seg, hash).map_or(Member::None, Member::Value),
        CVal::Array(a) => match seg {
            "isEmpty" | "empty" => Member::Bool(a.is_empty()),
            "size" => Member::Size(a.len()),
            _ => Member::None,
        },
        _ => Member::None,
    }
}

/// Name resolution of mustache.java (`ReflectionObjectHandler.find`): scopes are searched from
/// the innermost; in each, the whole name is first tried as one key, then dot notation is
/// walked. If a segment before the last is missing the search continues in the next scope; once
/// the walk reached the last segment the answer is final (missing renders empty).
fn lookup<'a>(stack: &[Frame<'a>], name: &Name) -> Resolved<'a> {
    let path = match name {
        Name::Implicit => {
            return match stack.last() {
                Some(f) => Resolved::Value(*f),
                None => Resolved::Missing,
            };
        }
        Name::Path(p) => p,
    };
    'scopes: for frame in stack.iter().rev() {
        if let CVal::Object(m) = frame.value {
            // A dotted name can only match whole in an object that has a dotted key.
            let whole = if path.segs.is_empty() || m.dotted_keys {
                m.get(&path.text, path.hash)
            } else {
                None
            };
            if let Some(v) = whole {
                return Resolved::Value(Frame {
                    value: v,
                    in_array: false,
                });
            }
        }
        if path.segs.is_empty() {
            continue;
        }
        let mut cur = frame.value;
        let n = path.segs.len();
        for (i, seg) in path.segs.iter().enumerate() {
            let last = i + 1 == n;
            match member(cur, path.seg(seg), seg.hash) {
                Member::Value(v) if last => {
                    return Resolved::Value(Frame {
                        value: v,
                        in_array: false,
                    })
                }
                // found, but null: the walk stops here (renders empty)
                Member::Value(CVal::Null) => return Resolved::Missing,
                Member::Value(v) => cur = v,
                Member::Bool(b) if last => return Resolved::Bool(b),
                Member::Size(n) if last => return Resolved::Size(n),
                // a method result has no further members; neither has a missing name
                Member::Bool(_) | Member::Size(_) | Member::None if !last => continue 'scopes,
                Member::Bool(_) | Member::Size(_) | Member::None => return Resolved::Missing,
            }
        }
    }
    if &*path.text == "asJson" {
        return Resolved::AsJson;
    }
    Resolved::Missing
}

fn render_nodes<'a>(
    nodes: &[Node],
    src: &str,
    stack: &mut Vec<Frame<'a>>,
    root: &'a CVal,
    out: &mut String,
    depth: usize,
) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(src.get(t.clone()).unwrap_or_default()),
            Node::Var(name) => match lookup(stack, name) {
                Resolved::Missing | Resolved::AsJson => {}
                Resolved::Value(f) => write_scalar(f.value, f.in_array, out),
                Resolved::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                Resolved::Size(n) => {
                    let _ = write!(out, "{n}");
                }
            },
            Node::Section {
                name,
                inverted,
                children,
                raw,
            } => {
                let resolved = lookup(stack, name);
                if *inverted {
                    let falsey = match &resolved {
                        Resolved::Missing => true,
                        Resolved::Value(f) => is_falsey(f),
                        Resolved::Bool(b) => !*b,
                        Resolved::Size(_) | Resolved::AsJson => false,
                    };
                    if falsey {
                        render_nodes(children, src, stack, root, out, depth);
                    }
                    continue;
                }
                match resolved {
                    Resolved::Missing => {}
                    Resolved::Bool(false) => {}
                    Resolved::Bool(true) => {
                        stack.push(Frame {
                            value: &TRUE,
                            in_array: false,
                        });
                        render_nodes(children, src, stack, root, out, depth);
                        stack.pop();
                    }
                    Resolved::Size(_) => {
                        // A number is truthy; numbers have no named members.
                        render_nodes(children, src, stack, root, out, depth);
                    }
                    Resolved::AsJson => {
                        let option = match root {
                            CVal::Object(m) => m.get(raw, name_hash(raw)),
                            _ => None,
                        };
                        let unescaped;
                        let text = match option {
                            Some(CVal::String(escaped)) => {
                                unescaped = unescape(escaped);
                                unescaped.as_str()
                            }
                            _ => "null",
                        };
                        if depth >= MAX_DEPTH {
                            out.push_str(text);
                        } else {
                            match Template::parse(text) {
                                Ok(t) => {
                                    render_nodes(&t.nodes, &t.src, stack, root, out, depth + 1)
                                }
                                Err(_) => out.push_str(text),
                            }
                        }
                    }
                    Resolved::Value(f) => {
                        if is_falsey(&f) {
                            continue;
                        }
                        match f.value {
                            CVal::Array(items) => {
                                for item in items.iter() {
                                    stack.push(Frame {
                                        value: item,
                                        in_array: true,
                                    });
                                    render_nodes(children, src, stack, root, out, depth);
                                    stack.pop();
                                }
                            }
                            _ => {
                                stack.push(f);
                                render_nodes(children, src, stack, root, out, depth);
                                stack.pop();
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The original text of a string compiled by [`CVal::from_value`] (undoes the JSON escaping).
fn unescape(escaped: &str) -> String {
    serde_json::from_str::<String>(&format!("\"{escaped}\"")).unwrap_or_else(|_| escaped.into())
}

fn is_falsey(f: &Frame<'_>) -> bool {
    match f.value {
        CVal::Null => true,
        CVal::Bool(b) => !*b,
        // An array element keeps its quotes, so `""` there is a two-character string.
        CVal::String(s) => s.is_empty() && !f.in_array,
        CVal::Array(a) => a.is_empty(),
        CVal::Number(_) | CVal::Object(_) => false,
    }
}

/// Writes a value the way `{{x}}` shows it: `null` → nothing, the rest as Java `toString`.
fn write_scalar(v: &CVal, in_array: bool, out: &mut String) {
    match v {
        CVal::Null => {}
        _ => write_java(v, in_array, out),
    }
}

/// Java `toString` of the converted value.
fn write_java(v: &CVal, in_array: bool, out: &mut String) {
    match v {
        CVal::Null => out.push_str("null"),
        CVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        CVal::Number(n) => out.push_str(n),
        CVal::String(s) => {
            if in_array {
                out.push('"');
                out.push_str(s);
                out.push('"');
            } else {
                out.push_str(s);
            }
        }
        CVal::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(item, true, out);
            }
            out.push(']');
        }
        CVal::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.entries().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write_java(item, false, out);
            }
            out.push('}');
        }
    }
}

/// Cosmos converts a JSON number with circe `toInt`, else `toDouble`: integral values that fit
/// an `int` print as integers, everything else through Java `Double.toString`.
pub fn write_java_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        if i32::try_from(i).is_ok() {
            let _ = write!(out, "{i}");
        } else {
            write_java_double(i as f64, out);
        }
        return;
    }
    if let Some(u) = n.as_u64() {
        write_java_double(u as f64, out);
        return;
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f >= i32::MIN as f64 && f <= i32::MAX as f64 {
        let _ = write!(out, "{}", f as i32);
    } else {
        write_java_double(f, out);
    }
}

/// Java `Double.toString` (shortest round-trip digits, JDK ≥ 19).
pub fn write_java_double(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("NaN");
        return;
    }
    if d.is_infinite() {
        out.push_str(if d > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if d == 0.0 {
        out.push_str(if d.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    let a = d.abs();
    if (1e-3..1e7).contains(&a) {
        let start = out.len();
        let _ = write!(out, "{d}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    } else {
        let s = format!("{d:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        out.push_str(mant);
        if !mant.contains('.') {
            out.push_str(".0");
        }
        out.push('E');
        out.push_str(exp);
    }
}

/// JSON string escaping without the surrounding quotes (circe `noSpaces`, serde_json and Python
/// `json.dumps(ensure_ascii=False)` agree on this set).
pub fn json_escape_into(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, c: Value) -> String {
        Template::parse(t).expect("parse").render(&c)
    }

    #[test]
    fn strings_are_json_escaped_without_quotes() {
        assert_eq!(
            r("\"{{s}}\"", json!({"s": "a\"b\\c\nd"})),
            r#""a\"b\\c\nd""#
        );
        assert_eq!(r("{{s}}", json!({"s": "<&'>"})), "<&'>");
        assert_eq!(r("{{{s}}}", json!({"s": "\u{1}é"})), "\\u0001é");
        assert_eq!(r("{{& s}}", json!({"s": "x"})), "x");
    }

    #[test]
    fn arrays_render_as_java_lists_with_quoted_strings() {
        assert_eq!(
            r("{{a}}", json!({"a": ["one", "two"]})),
            r#"["one", "two"]"#
        );
        assert_eq!(
            r("{{a}}", json!({"a": [[1, 2], [3, 4]]})),
            "[[1, 2], [3, 4]]"
        );
        assert_eq!(r("{{a}}", json!({"a": []})), "[]");
        assert_eq!(
            r("{{a}}", json!({"a": [{"k": "v", "n": null}]})),
            "[{k=v, n=null}]"
        );
        assert_eq!(r("{{#a}}{{.}};{{/a}}", json!({"a": ["x", 1]})), "\"x\";1;");
    }

    #[test]
    fn numbers_follow_java() {
        let c = json!({"a": 1.0, "b": 0.5, "c": 1e-7, "d": 10737418240u64, "e": -3, "f": 12345678.9, "g": 0.001});
        assert_eq!(
            r("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}}", c),
            "1 0.5 1.0E-7 1.073741824E10 -3 1.23456789E7 0.001"
        );
        assert_eq!(r("{{x}}", json!({"x": 2147483648u64})), "2.147483648E9");
        assert_eq!(r("{{x}}", json!({"x": 100.25})), "100.25");
    }

    #[test]
    fn truthiness_is_java() {
        let t = "{{#x}}T{{/x}}{{^x}}F{{/x}}";
        assert_eq!(r(t, json!({"x": 0})), "T");
        assert_eq!(r(t, json!({"x": {}})), "T");
        assert_eq!(r(t, json!({"x": ""})), "F");
        assert_eq!(r(t, json!({"x": null})), "F");
        assert_eq!(r(t, json!({"x": false})), "F");
        assert_eq!(r(t, json!({"x": []})), "F");
        assert_eq!(r(t, json!({})), "F");
        assert_eq!(r(t, json!({"x": "a"})), "T");
        assert_eq!(r(t, json!({"x": [1, 2]})), "TT");
    }

    #[test]
    fn list_methods_resolve() {
        let t =
            "{{^x.l.isEmpty}}has {{x.l.size}}{{/x.l.isEmpty}}{{#x.l.isEmpty}}none{{/x.l.isEmpty}}";
        assert_eq!(r(t, json!({"x": {"l": [1, 2]}})), "has 2");
        assert_eq!(r(t, json!({"x": {"l": []}})), "none");
        assert_eq!(r(t, json!({"x": {}})), "has ");
    }

    #[test]
    fn sections_push_scope_and_dotted_names_search_up() {
        let c = json!({"svc": {"name": "n", "o": {"p": 1}}, "top": "t"});
        assert_eq!(
            r("{{#svc}}{{name}}-{{top}}-{{o.p}}-{{svc.name}}{{/svc}}", c),
            "n-t-1-n"
        );
        let c = json!({"l": [{"key": "a", "value": "b"}, {"key": "c", "value": "d"}]});
        assert_eq!(
            r("{{#l}}\"{{key}}\":\"{{value}}\",{{/l}}", c),
            "\"a\":\"b\",\"c\":\"d\","
        );
    }

    #[test]
    fn names_resolve_like_mustache_java() {
        // a key containing dots is found as a whole
        assert_eq!(r("{{a.b}}", json!({"a.b": 1, "a": {"b": 2}})), "1");
        // a missing intermediate segment continues in the outer scopes (pystache would stop)
        let c = json!({"a": {"b": {"c": 1}}, "o": {"a": {}}});
        assert_eq!(r("{{#o}}{{a.b.c}}{{/o}}", c), "1");
        // once the walk reached the last segment, a miss is final
        let c = json!({"a": {"b": 1}, "o": {"a": {"c": 2}}});
        assert_eq!(r("{{#o}}[{{a.b}}]{{/o}}", c), "[]");
        // a null on the way stops the walk
        assert_eq!(r("[{{a.b}}]", json!({"a": null})), "[]");
        // the bean form of isEmpty
        assert_eq!(r("{{l.empty}}", json!({"l": []})), "true");
    }

    #[test]
    fn as_json_helper() {
        let c = json!({"j": "{\"a\": [1, 2]}", "n": 5, "resource": {}});
        assert_eq!(r("{{#asJson}}j{{/asJson}}", c.clone()), "{\"a\": [1, 2]}");
        assert_eq!(r("{{#asJson}}n{{/asJson}}", c.clone()), "null");
        assert_eq!(r("{{#asJson}}missing{{/asJson}}", c.clone()), "null");
        assert_eq!(r("{{^asJson}}x{{/asJson}}", c), "");
    }

    #[test]
    fn comments_and_delimiters() {
        assert_eq!(
            r("a{{! hi }}b{{=<% %>=}}<%x%>{{x}}", json!({"x": 1})),
            "ab1{{x}}"
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        for t in [
            "{{#a}}x",
            "{{/a}}",
            "{{#a}}{{/b}}",
            "{{x",
            "{{{x}}",
            "{{>p}}",
            "{{}}",
            "{{=a=}}",
        ] {
            let e = Template::parse(t).expect_err(t);
            assert!(!e.message.is_empty(), "{t}");
        }
    }

    #[test]
    fn null_renders_empty_and_missing_renders_empty() {
        assert_eq!(r("[{{a}}|{{b.c}}]", json!({"a": null})), "[|]");
    }
}
