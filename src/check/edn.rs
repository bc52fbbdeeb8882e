//! Reading Jepsen-style EDN histories, one event map per line, e.g.
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
//! {:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
//! ```
//!
//! `:type` is `:invoke`, `:ok`, `:fail` (the op did not happen: dropped) or
//! `:info` (outcome unknown: pending); an invoke never completed is pending
//! too. `:f` is `:get`, `:put` or `:append`; a get's `:ok` carries the value
//! read (`nil` reads as `""`). Events are in time order, so an op's call and
//! return times are the line numbers of its invoke and completion. A missing
//! `:key` with a `[key value]` vector as `:value` (Jepsen's "independent"
//! keys) is accepted too. Events of non-numeric processes (e.g. `:nemesis`)
//! are ignored. Errors name the file, the line and the reason; the parser
//! never panics.

use std::borrow::Cow;
use std::collections::HashMap;

use super::history::{History, HistoryError, Op, OpKind};

/// An EDN value (the subset histories use, plus enough to skip the rest).
#[derive(Clone, Debug, PartialEq)]
pub enum Edn<'a> {
    Nil,
    Bool(bool),
    /// Integers and floats, as written.
    Number(&'a str),
    Str(Cow<'a, str>),
    Char(char),
    /// Without the leading colon.
    Keyword(&'a str),
    Symbol(&'a str),
    List(Vec<Edn<'a>>),
    Vector(Vec<Edn<'a>>),
    Set(Vec<Edn<'a>>),
    Map(Vec<(Edn<'a>, Edn<'a>)>),
    Tagged(&'a str, Box<Edn<'a>>),
}

impl<'a> Edn<'a> {
    /// The value of keyword key `k` in a map.
    pub fn get(&self, k: &str) -> Option<&Edn<'a>> {
        match self {
            Edn::Map(entries) => {
                entries.iter().find(|(key, _)| matches!(key, Edn::Keyword(s) if *s == k)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let s = match self {
            Edn::Nil => "nil".to_string(),
            Edn::Bool(b) => b.to_string(),
            Edn::Number(n) => n.to_string(),
            Edn::Str(s) => format!("{s:?}"),
            Edn::Char(c) => format!("\\{c}"),
            Edn::Keyword(k) => format!(":{k}"),
            Edn::Symbol(s) => s.to_string(),
            Edn::List(_) => "a list".to_string(),
            Edn::Vector(_) => "a vector".to_string(),
            Edn::Set(_) => "a set".to_string(),
            Edn::Map(_) => "a map".to_string(),
            Edn::Tagged(t, _) => format!("#{t} ..."),
        };
        if s.chars().count() > 60 {
            let cut: String = s.chars().take(57).collect();
            format!("{cut}...")
        } else {
            s
        }
    }
}

/// A parse error at a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    pub reason: String,
}

/// Parses every top-level form of `text`, with the line each starts on.
pub fn parse_forms(text: &str) -> Result<Vec<(usize, Edn<'_>)>, EdnError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser { text, s: text.as_bytes(), pos: 0, line: 1, depth: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        if p.pos >= p.s.len() {
            return Ok(out);
        }
        let line = p.line;
        match p.value()? {
            Some(v) => out.push((line, v)),
            None => {
                // `#_` discarded the last form, or a stray closing delimiter.
                if p.pos < p.s.len() && matches!(p.s[p.pos], b')' | b']' | b'}') {
                    return Err(p.err(format!("unexpected '{}'", p.s[p.pos] as char)));
                }
            }
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
    line: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 200;

impl<'a> Parser<'a> {
    fn err(&self, reason: impl Into<String>) -> EdnError {
        EdnError { line: self.line, reason: reason.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => {
                    self.bump();
                }
                b';' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    fn is_delim(c: u8) -> bool {
        matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';')
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if Self::is_delim(c) {
                break;
            }
            self.bump();
        }
        // We stop only at ASCII delimiters, so these are char boundaries.
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// Parses one value; `None` for a `#_`-discarded form at the end of a
    /// collection or input.
    fn value(&mut self) -> Result<Option<Edn<'a>>, EdnError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let r = self.value_inner();
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self) -> Result<Option<Edn<'a>>, EdnError> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            b'{' => {
                self.bump();
                let items = self.seq(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(self.err("map has an odd number of forms (a key without value)"));
                }
                let mut it = items.into_iter();
                let mut entries = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Ok(Some(Edn::Map(entries)))
            }
            b'[' => {
                self.bump();
                Ok(Some(Edn::Vector(self.seq(b']')?)))
            }
            b'(' => {
                self.bump();
                Ok(Some(Edn::List(self.seq(b')')?)))
            }
            b')' | b']' | b'}' => Err(self.err(format!("unexpected '{}'", c as char))),
            b'"' => {
                self.bump();
                Ok(Some(Edn::Str(self.string()?)))
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        Ok(Some(Edn::Set(self.seq(b'}')?)))
                    }
                    Some(b'_') => {
                        self.bump();
                        self.skip_ws();
                        if matches!(self.peek(), None | Some(b')' | b']' | b'}')) {
                            return Err(self.err("'#_' with nothing to discard"));
                        }
                        self.value()?;
                        self.skip_ws();
                        if matches!(self.peek(), None | Some(b')' | b']' | b'}')) {
                            return Ok(None);
                        }
                        self.value()
                    }
                    _ => {
                        let tag = self.token();
                        if tag.is_empty() {
                            return Err(self.err("'#' not followed by a tag"));
                        }
                        match self.value()? {
                            Some(v) => Ok(Some(Edn::Tagged(tag, Box::new(v)))),
                            None => Err(self.err(format!("tag #{tag} without value"))),
                        }
                    }
                }
            }
            b'\\' => {
                self.bump();
                let start = self.pos;
                // A character literal: at least one char, then up to a delimiter.
                let first = std::str::from_utf8(&self.s[start..]).ok().and_then(|r| r.chars().next());
                let Some(first) = first else {
                    return Err(self.err("'\\' at end of input"));
                };
                for _ in 0..first.len_utf8() {
                    self.bump();
                }
                let rest = self.token().to_string();
                let ch = if rest.is_empty() {
                    first
                } else {
                    let name = format!("{first}{rest}");
                    match name.as_str() {
                        "newline" => '\n',
                        "space" => ' ',
                        "tab" => '\t',
                        "return" => '\r',
                        "backspace" => '\u{8}',
                        "formfeed" => '\u{c}',
                        n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.err(format!("bad character literal \\{n}")))?,
                        n => return Err(self.err(format!("unknown character literal \\{n}"))),
                    }
                };
                Ok(Some(Edn::Char(ch)))
            }
            b':' => {
                self.bump();
                let t = self.token();
                if t.is_empty() {
                    return Err(self.err("':' without a keyword name"));
                }
                Ok(Some(Edn::Keyword(t)))
            }
            _ => {
                let t = self.token();
                if t.is_empty() {
                    return Err(self.err(format!("unexpected character {:?}", c as char)));
                }
                let b = t.as_bytes();
                let numeric =
                    b[0].is_ascii_digit() || (b.len() > 1 && (b[0] == b'-' || b[0] == b'+') && b[1].is_ascii_digit());
                Ok(Some(match t {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ if numeric => {
                        let ok = t
                            .trim_end_matches(['N', 'M'])
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-./".contains(c));
                        if !ok {
                            return Err(self.err(format!("bad number {t:?}")));
                        }
                        Edn::Number(t)
                    }
                    _ => Edn::Symbol(t),
                }))
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Edn<'a>>, EdnError> {
        let open_line = self.line;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return Err(EdnError {
                        line: open_line,
                        reason: format!(
                            "'{}' opened here is never closed",
                            match close {
                                b'}' => '{',
                                b']' => '[',
                                _ => '(',
                            }
                        ),
                    })
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(c @ (b')' | b']' | b'}')) => {
                    return Err(self.err(format!("expected '{}' but found '{}'", close as char, c as char)))
                }
                Some(_) => {
                    if let Some(v) = self.value()? {
                        items.push(v);
                    }
                }
            }
        }
    }

    /// The rest of a string literal (after the opening quote); borrowed
    /// from the input when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, EdnError> {
        let start_line = self.line;
        let start = self.pos;
        // Fast path: up to the closing quote, no escapes.
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    let s = self.text.get(start..self.pos).unwrap_or("");
                    self.bump();
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                _ => {
                    self.bump();
                }
            }
        }
        let mut out: Vec<u8> = self.s[start..self.pos].to_vec();
        loop {
            let Some(c) = self.bump() else {
                return Err(EdnError { line: start_line, reason: "unterminated string".to_string() });
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.bump() else {
                        return Err(EdnError { line: start_line, reason: "unterminated string".to_string() });
                    };
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'/' => out.push(b'/'),
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => {
                            return Err(self.err(format!("unknown escape '\\{}' in string", other as char)));
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        // Built from a valid &str by copying whole UTF-8 sequences and
        // inserting encoded chars, so this cannot fail; be safe anyway.
        String::from_utf8(out).map(Cow::Owned).map_err(|_| self.err("string is not valid UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32, EdnError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self.bump().and_then(|c| (c as char).to_digit(16));
            match d {
                Some(d) => v = v * 16 + d,
                None => return Err(self.err("bad \\u escape (need 4 hex digits)")),
            }
        }
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, EdnError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            // A surrogate pair written as two escapes.
            if self.peek() == Some(b'\\') && self.s.get(self.pos + 1) == Some(&b'u') {
                self.bump();
                self.bump();
                let lo = self.hex4()?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(c).ok_or_else(|| self.err("bad surrogate pair"));
                }
            }
            return Err(self.err("unpaired surrogate in \\u escape"));
        }
        char::from_u32(hi).ok_or_else(|| self.err("bad \\u escape"))
    }
}

fn scalar_string(v: &Edn) -> Option<String> {
    match v {
        Edn::Str(s) => Some(s.to_string()),
        Edn::Number(n) => Some(n.to_string()),
        Edn::Keyword(k) => Some(k.to_string()),
        Edn::Symbol(s) => Some(s.to_string()),
        Edn::Bool(b) => Some(b.to_string()),
        Edn::Char(c) => Some(c.to_string()),
        _ => None,
    }
}

/// Parses a Jepsen-style EDN key/value history. `name` (usually the file
/// path) appears in errors and becomes the scenario.
pub fn parse_edn_history(text: &str, name: &str) -> Result<History, HistoryError> {
    let err = |line: usize, reason: String| HistoryError::Edn { path: name.to_string(), line, reason };
    let forms = parse_forms(text).map_err(|e| err(e.line, e.reason))?;
    let mut ops: Vec<Option<Op>> = Vec::new();
    // process -> (index in ops, line of its invoke)
    let mut open: HashMap<String, (usize, usize)> = HashMap::new();
    for (line, form) in forms {
        if !matches!(form, Edn::Map(_)) {
            return Err(err(line, format!("expected an event map {{...}}, found {}", form.describe())));
        }
        let process = match form.get("process") {
            Some(Edn::Number(n)) => n.to_string(),
            Some(_) => continue, // nemesis and other non-client events
            None => return Err(err(line, "event has no :process".to_string())),
        };
        let client: u64 = match process.parse() {
            Ok(c) => c,
            Err(_) => return Err(err(line, format!(":process {process} is not a non-negative integer"))),
        };
        let typ = match form.get("type") {
            Some(Edn::Keyword(t)) => *t,
            Some(other) => return Err(err(line, format!(":type must be a keyword, found {}", other.describe()))),
            None => return Err(err(line, "event has no :type".to_string())),
        };
        let f = match form.get("f") {
            Some(Edn::Keyword(f)) | Some(Edn::Symbol(f)) => *f,
            Some(other) => return Err(err(line, format!(":f must be a keyword, found {}", other.describe()))),
            None => return Err(err(line, "event has no :f".to_string())),
        };
        let kind = match f {
            "get" | "read" | "r" => OpKind::Get,
            "put" | "write" | "w" => OpKind::Put,
            "append" => OpKind::Append,
            other => return Err(err(line, format!("unknown :f :{other} (expected :get, :put or :append)"))),
        };
        // Key and value; Jepsen's independent keys put [key value] in :value.
        let raw_value = form.get("value").cloned().unwrap_or(Edn::Nil);
        let (key, value) = match form.get("key") {
            Some(k) => match scalar_string(k) {
                Some(k) => (k, raw_value),
                None => return Err(err(line, format!(":key must be a string or number, found {}", k.describe()))),
            },
            None => match &raw_value {
                Edn::Vector(kv) if kv.len() == 2 => match scalar_string(&kv[0]) {
                    Some(k) => (k, kv[1].clone()),
                    None => return Err(err(line, format!("bad key {} in [key value]", kv[0].describe()))),
                },
                _ => return Err(err(line, "event has no :key (and :value is not a [key value] pair)".to_string())),
            },
        };
        let value_str = |what: &str| -> Result<String, HistoryError> {
            match &value {
                Edn::Nil => Ok(String::new()),
                v => scalar_string(v)
                    .ok_or_else(|| err(line, format!("{what} :value must be a string, found {}", v.describe()))),
            }
        };
        match typ {
            "invoke" => {
                if let Some(&(_, at)) = open.get(&process) {
                    return Err(err(
                        line,
                        format!("process {process} invokes again while its op invoked at line {at} has not completed"),
                    ));
                }
                let v = if kind == OpKind::Get { String::new() } else { value_str(kind.as_str())? };
                open.insert(process.clone(), (ops.len(), line));
                ops.push(Some(Op::new(client, kind, key, v, None, line as u64, None)));
            }
            "ok" | "fail" | "info" => {
                let Some((idx, at)) = open.remove(&process) else {
                    return Err(err(line, format!("process {process} completes (:{typ}) an op it never invoked")));
                };
                let op = ops[idx].as_mut().expect("open ops are present");
                if op.kind != kind {
                    return Err(err(line, format!(":{typ} :{f} completes a :{} invoked at line {at}", op.kind)));
                }
                if op.key != key {
                    return Err(err(
                        line,
                        format!("completion key {key:?} differs from key {:?} invoked at line {at}", op.key),
                    ));
                }
                match typ {
                    "ok" => {
                        op.return_ns = Some(line as u64);
                        if kind == OpKind::Get {
                            op.output = Some(value_str("get result")?);
                        }
                    }
                    "fail" => ops[idx] = None,
                    _ => {} // info: outcome unknown, stays pending
                }
            }
            other => return Err(err(line, format!("unknown :type :{other} (expected :invoke, :ok, :fail or :info)"))),
        }
    }
    let scenario = std::path::Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string());
    Ok(History::new(scenario, 0, ops.into_iter().flatten().collect()))
}

/// Reads and parses an EDN history file.
pub fn load_edn(path: impl AsRef<std::path::Path>) -> Result<History, HistoryError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io { path: name.clone(), source })?;
    parse_edn_history(&text, &name)
}
