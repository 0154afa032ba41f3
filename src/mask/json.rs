//! The `json` strategy: other strategies applied at paths inside json/jsonb values. Paths are
//! `$` followed by `.key`, `[n]`, `[*]` (every element) and `..key` (that key at any depth).
//! Unmasked parts keep their key order and their numbers' exact digits.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};

use super::key::MaskKey;
use super::spec::{ColumnSpec, StrategySpec};
use super::strategies::{build, Outcome, Strategy};
use crate::types::TypeKind;

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
    Every,
    /// `..key`: the key in this node or any node below it.
    Descend(String),
}

pub fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let bad = |why: &str| format!("JSON path \"{path}\": {why}");
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("must start with $"))?;
    let b = rest.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let key_end = |from: usize| {
        b[from..]
            .iter()
            .position(|&c| c == b'.' || c == b'[')
            .map_or(b.len(), |p| from + p)
    };
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'.') => {
                let end = key_end(i + 2);
                if end == i + 2 {
                    return Err(bad("empty key after .."));
                }
                segs.push(Seg::Descend(rest[i + 2..end].to_string()));
                i = end;
            }
            b'.' => {
                let end = key_end(i + 1);
                if end == i + 1 {
                    return Err(bad("empty key"));
                }
                segs.push(Seg::Key(rest[i + 1..end].to_string()));
                i = end;
            }
            b'[' => {
                let close = rest[i..]
                    .find(']')
                    .map(|p| i + p)
                    .ok_or_else(|| bad("unclosed ["))?;
                let inside = &rest[i + 1..close];
                segs.push(if inside == "*" {
                    Seg::Every
                } else {
                    Seg::Index(
                        inside
                            .parse()
                            .map_err(|_| bad("[...] holds * or an index"))?,
                    )
                });
                i = close + 1;
            }
            _ => return Err(bad("expected . or [")),
        }
    }
    if segs.is_empty() {
        return Err(bad("names no value inside the document"));
    }
    Ok(segs)
}

struct Rule {
    segs: Vec<Seg>,
    strategy: Box<dyn Strategy>,
    is_null: bool,
}

impl Clone for Rule {
    fn clone(&self) -> Rule {
        Rule {
            segs: self.segs.clone(),
            strategy: self.strategy.clone(),
            is_null: self.is_null,
        }
    }
}

/// Rewrites a document in one pass over its text: spans that no path reaches are copied as
/// they are (whitespace, key order, duplicate keys, number digits), matched leaves are
/// replaced. The buffers live in the strategy, so a warm rewriter allocates nothing per row.
#[derive(Clone)]
pub struct JsonPaths {
    rules: Vec<Rule>,
    jsonb: bool,
    /// Path positions reached at each open node: (rule, next segment), frames stacked.
    states: Vec<(u16, u16)>,
    /// Nodes open on the way down to the current one, while some path still applies.
    depth: usize,
    closers: Vec<u8>,
    key: BytesMut,
    leaf: BytesMut,
    scratch: BytesMut,
}

impl JsonPaths {
    pub fn build(
        paths: &BTreeMap<String, StrategySpec>,
        col: &ColumnSpec,
        key: Option<&MaskKey>,
    ) -> Result<JsonPaths, String> {
        let mut rules = Vec::new();
        for (path, spec) in paths {
            let segs = parse_path(path)?;
            if matches!(spec, StrategySpec::Json { .. } | StrategySpec::Default) {
                return Err(format!(
                    "JSON path \"{path}\": strategy \"{}\" cannot apply inside a JSON value",
                    spec.name()
                ));
            }
            let is_null = matches!(spec, StrategySpec::Null);
            let inner = ColumnSpec::new(path, TypeKind::Text);
            let strategy =
                build(spec, &inner, key).map_err(|e| format!("JSON path \"{path}\": {e}"))?;
            rules.push(Rule {
                segs,
                strategy,
                is_null,
            });
        }
        if rules.len() > u16::MAX as usize {
            return Err("too many JSON paths for one column".into());
        }
        Ok(JsonPaths {
            rules,
            jsonb: col.kind == TypeKind::Jsonb,
            states: Vec::new(),
            depth: 0,
            closers: Vec::new(),
            key: BytesMut::new(),
            leaf: BytesMut::new(),
            scratch: BytesMut::new(),
        })
    }
}

impl Strategy for JsonPaths {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        let text = if self.jsonb {
            match input.split_first() {
                Some((1, t)) => t,
                _ => return Err("jsonb value has an unknown version".into()),
            }
        } else {
            input
        };
        let mark = out.len();
        if self.jsonb {
            out.put_u8(1);
        }
        self.states.clear();
        self.depth = 0;
        for r in 0..self.rules.len() {
            self.states.push((r as u16, 0));
        }
        let mut doc = Doc {
            src: text,
            pos: 0,
            copied: 0,
        };
        let result = doc
            .ws()
            .and_then(|_| self.value(&mut doc, 0, out))
            .and_then(|_| {
                doc.ws()?;
                if doc.pos == text.len() {
                    Ok(())
                } else {
                    Err(doc.bad())
                }
            });
        if let Err(e) = result {
            out.truncate(mark);
            return Err(e);
        }
        out.put_slice(&text[doc.copied..]);
        Ok(Outcome::Value)
    }
}

/// The input document and how far it has been read and copied to the output.
struct Doc<'a> {
    src: &'a [u8],
    pos: usize,
    copied: usize,
}

impl Doc<'_> {
    fn bad(&self) -> String {
        format!("value is not valid JSON (at byte {})", self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) -> Result<(), String> {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
        Ok(())
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws()?;
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.bad())
        }
    }

    /// Copies what precedes `from` to `out`, writes the replacement there instead of
    /// `from..self.pos`.
    fn replace(&mut self, from: usize, out: &mut BytesMut, with: &[u8]) {
        out.put_slice(&self.src[self.copied..from]);
        out.put_slice(with);
        self.copied = self.pos;
    }

    /// Reads a string (the opening quote is next); returns the span inside the quotes and
    /// whether it holds escapes.
    fn string(&mut self) -> Result<(usize, usize, bool), String> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos - 1, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(c) if c < 0x20 => return Err(self.bad()),
                Some(_) => self.pos += 1,
                None => return Err(self.bad()),
            }
        }
    }

    fn number(&mut self) -> Result<(), String> {
        let len = number_len(&self.src[self.pos..]);
        if len == 0 {
            return Err(self.bad());
        }
        self.pos += len;
        Ok(())
    }

    fn literal(&mut self) -> Result<(), String> {
        for word in [&b"true"[..], b"false", b"null"] {
            if self.src[self.pos..].starts_with(word) {
                self.pos += word.len();
                return Ok(());
            }
        }
        Err(self.bad())
    }

    /// Skips a whole value that no path reaches, without recursion (`closers` is a reused
    /// stack of the brackets still open).
    fn skip(&mut self, closers: &mut Vec<u8>) -> Result<(), String> {
        closers.clear();
        loop {
            // A value is next.
            self.ws()?;
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    self.pos += 1;
                    self.ws()?;
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        closers.push(close);
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => self.literal()?,
                None => return Err(self.bad()),
            }
            // After a value: close what ends here, or go on to the next member.
            loop {
                let Some(&close) = closers.last() else {
                    return Ok(());
                };
                self.ws()?;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if close == b'}' {
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.pos += 1;
                        closers.pop();
                    }
                    _ => return Err(self.bad()),
                }
            }
        }
    }

    /// An object member's key and its colon.
    fn member_key(&mut self) -> Result<(usize, usize, bool), String> {
        self.ws()?;
        if self.peek() != Some(b'"') {
            return Err(self.bad());
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(key)
    }
}

/// How deep paths follow a document (the walk recurses while a path still applies; values
/// below that no path reaches are skipped without recursion).
const MAX_DEPTH: usize = 256;

/// Where a child node stands on a rule's path, given where its parent stood.
enum Step {
    Key(usize, usize, bool),
    Index(usize),
}

impl JsonPaths {
    /// The node at `doc.pos`, reached by the states from `frame` to the end of the stack.
    fn value(&mut self, doc: &mut Doc, frame: usize, out: &mut BytesMut) -> Result<(), String> {
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "a JSON path had to look deeper than {MAX_DEPTH} levels; name the path \
                 without `..` so that deeper levels are skipped"
            ));
        }
        let mut done_null = false;
        let mut done_leaf = false;
        for &(r, s) in &self.states[frame..] {
            let rule = &self.rules[r as usize];
            if s as usize == rule.segs.len() {
                if rule.is_null {
                    done_null = true;
                } else {
                    done_leaf = true;
                }
            }
        }
        let start = doc.pos;
        if done_null {
            doc.skip(&mut self.closers)?;
            doc.replace(start, out, b"null");
            return Ok(());
        }
        if frame == self.states.len() {
            return doc.skip(&mut self.closers);
        }
        match doc.peek() {
            Some(b'{') => {
                doc.pos += 1;
                doc.ws()?;
                if doc.peek() == Some(b'}') {
                    doc.pos += 1;
                    return Ok(());
                }
                loop {
                    let (a, b, escaped) = doc.member_key()?;
                    doc.ws()?;
                    let child = self.states.len();
                    self.enter(doc, frame, child, Step::Key(a, b, escaped))?;
                    self.depth += 1;
                    let r = self.value(doc, child, out);
                    self.depth -= 1;
                    r?;
                    self.states.truncate(child);
                    doc.ws()?;
                    match doc.peek() {
                        Some(b',') => doc.pos += 1,
                        Some(b'}') => {
                            doc.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(doc.bad()),
                    }
                }
            }
            Some(b'[') => {
                doc.pos += 1;
                doc.ws()?;
                if doc.peek() == Some(b']') {
                    doc.pos += 1;
                    return Ok(());
                }
                let mut index = 0;
                loop {
                    doc.ws()?;
                    let child = self.states.len();
                    self.enter(doc, frame, child, Step::Index(index))?;
                    self.depth += 1;
                    let r = self.value(doc, child, out);
                    self.depth -= 1;
                    r?;
                    self.states.truncate(child);
                    index += 1;
                    doc.ws()?;
                    match doc.peek() {
                        Some(b',') => doc.pos += 1,
                        Some(b']') => {
                            doc.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(doc.bad()),
                    }
                }
            }
            Some(b'"') => {
                let (a, b, escaped) = doc.string()?;
                if done_leaf {
                    self.leaf.clear();
                    if escaped {
                        unescape(&doc.src[a..b], &mut self.leaf).map_err(|_| doc.bad())?;
                    } else {
                        self.leaf.put_slice(&doc.src[a..b]);
                    }
                    self.mask_leaf(doc, frame, start, false, out)?;
                }
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                doc.number()?;
                if done_leaf {
                    self.leaf.clear();
                    self.leaf.put_slice(&doc.src[start..doc.pos]);
                    self.mask_leaf(doc, frame, start, true, out)?;
                }
                Ok(())
            }
            Some(_) => doc.literal(),
            None => Err(doc.bad()),
        }
    }

    /// Pushes, from `child` on, the states a child node reaches from those of its parent
    /// (`frame..child`).
    fn enter(&mut self, doc: &Doc, frame: usize, child: usize, step: Step) -> Result<(), String> {
        let key: &[u8] = match step {
            Step::Key(a, b, true) => {
                self.key.clear();
                unescape(&doc.src[a..b], &mut self.key).map_err(|_| doc.bad())?;
                &self.key
            }
            Step::Key(a, b, false) => &doc.src[a..b],
            Step::Index(_) => &[],
        };
        for i in frame..child {
            let (r, s) = self.states[i];
            let Some(seg) = self.rules[r as usize].segs.get(s as usize) else {
                continue;
            };
            let (advance, stay) = match (seg, &step) {
                (Seg::Key(k), Step::Key(..)) => (k.as_bytes() == key, false),
                (Seg::Index(n), Step::Index(i)) => (n == i, false),
                (Seg::Every, Step::Index(_)) => (true, false),
                // `..key` matches at any depth, also below a node it already matched.
                (Seg::Descend(k), Step::Key(..)) => (k.as_bytes() == key, true),
                (Seg::Descend(_), Step::Index(_)) => (false, true),
                _ => (false, false),
            };
            for (add, next) in [(advance, s + 1), (stay, s)] {
                if add && !self.states[child..].contains(&(r, next)) {
                    self.states.push((r, next));
                }
            }
        }
        Ok(())
    }

    /// Runs the leaf in `self.leaf` through every rule whose path ends at this node, in
    /// order, and writes the result in place of the node.
    fn mask_leaf(
        &mut self,
        doc: &mut Doc,
        frame: usize,
        start: usize,
        mut number: bool,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        for i in frame..self.states.len() {
            let (r, s) = self.states[i];
            let rule = &mut self.rules[r as usize];
            if s as usize != rule.segs.len() {
                continue;
            }
            self.scratch.clear();
            if let Outcome::Null = rule.strategy.mask(&self.leaf, &mut self.scratch)? {
                doc.replace(start, out, b"null");
                return Ok(());
            }
            std::str::from_utf8(&self.scratch)
                .map_err(|_| "masked JSON value is not UTF-8".to_string())?;
            std::mem::swap(&mut self.leaf, &mut self.scratch);
            number = number && number_len(&self.leaf) == self.leaf.len() && !self.leaf.is_empty();
        }
        out.put_slice(&doc.src[doc.copied..start]);
        if number {
            out.put_slice(&self.leaf);
        } else {
            put_json_string(out, &self.leaf);
        }
        doc.copied = doc.pos;
        Ok(())
    }
}

/// The length of the JSON number at the start of `b` (0 if none).
fn number_len(b: &[u8]) -> usize {
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - from
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return 0,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return 0;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return 0;
        }
    }
    i
}

/// Decodes the inside of a JSON string (escapes resolved) into `out` as UTF-8.
fn unescape(s: &[u8], out: &mut BytesMut) -> Result<(), ()> {
    let hex4 = |h: &[u8]| -> Result<u32, ()> {
        let h = std::str::from_utf8(h.get(..4).ok_or(())?).map_err(|_| ())?;
        u32::from_str_radix(h, 16).map_err(|_| ())
    };
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.put_u8(c);
            i += 1;
            continue;
        }
        let e = *s.get(i + 1).ok_or(())?;
        i += 2;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = hex4(&s[i..])?;
                i += 4;
                if (0xD800..0xDC00).contains(&cp) && s[i..].starts_with(b"\\u") {
                    let lo = hex4(&s[i + 2..])?;
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buf = [0u8; 4];
                out.put_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return Err(()),
        };
        out.put_u8(simple);
    }
    Ok(())
}

/// Writes UTF-8 text as a JSON string.
fn put_json_string(out: &mut BytesMut, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let mut from = 0;
    for (i, &c) in s.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.put_slice(&s[from..i]);
        if esc.is_empty() {
            out.put_slice(b"\\u00");
            out.put_u8(HEX[(c >> 4) as usize]);
            out.put_u8(HEX[(c & 15) as usize]);
        } else {
            out.put_slice(esc);
        }
        from = i + 1;
    }
    out.put_slice(&s[from..]);
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("$.a.b").unwrap(),
            vec![Seg::Key("a".into()), Seg::Key("b".into())]
        );
        assert_eq!(
            parse_path("$.a[*].c").unwrap(),
            vec![Seg::Key("a".into()), Seg::Every, Seg::Key("c".into())]
        );
        assert_eq!(
            parse_path("$..email").unwrap(),
            vec![Seg::Descend("email".into())]
        );
        assert_eq!(
            parse_path("$.a[2]").unwrap(),
            vec![Seg::Key("a".into()), Seg::Index(2)]
        );
        for bad in ["a.b", "$", "$.", "$.a[", "$.a[x]", "$x"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masks_at_paths_and_keeps_the_rest() {
        let key = MaskKey::new(b"json masking test key").unwrap();
        let mut paths = BTreeMap::new();
        paths.insert(
            "$..email".to_string(),
            StrategySpec::Email { keep_domain: true },
        );
        paths.insert(
            "$.contact.phones[*]".to_string(),
            StrategySpec::Digits { luhn: false },
        );
        paths.insert("$.ssn".to_string(), StrategySpec::Null);
        let col = ColumnSpec::new("profile", TypeKind::Jsonb);
        let mut s = JsonPaths::build(&paths, &col, Some(&key)).unwrap();
        let input = br#"{"z": 1.50000000000000000001, "email": "a@x.io", "contact": {"phones": ["555-1234", 5551234], "email": "b@y.io"}, "ssn": "123"}"#;
        let mut jsonb = vec![1u8];
        jsonb.extend_from_slice(input);
        let mut out = BytesMut::new();
        s.mask(&jsonb, &mut out).unwrap();
        assert_eq!(out[0], 1);
        let doc: Json = serde_json::from_slice(&out[1..]).unwrap();
        let text = String::from_utf8(out[1..].to_vec()).unwrap();
        assert!(
            text.starts_with(r#"{"z": 1.50000000000000000001, "email": ""#),
            "order, spacing and digits kept: {text}"
        );
        assert!(doc["email"].as_str().unwrap().ends_with("@x.io") && doc["email"] != "a@x.io");
        assert!(doc["contact"]["email"].as_str().unwrap().ends_with("@y.io"));
        assert_ne!(doc["contact"]["phones"][0], "555-1234");
        assert!(doc["contact"]["phones"][1].is_number());
        assert!(doc["ssn"].is_null());
        assert!(
            JsonPaths::build(&paths, &col, None).is_err(),
            "keyed strategies need the key"
        );
    }

    fn paths(rules: &[(&str, StrategySpec)], kind: TypeKind) -> JsonPaths {
        let key = MaskKey::new(b"json masking test key").unwrap();
        let map: BTreeMap<String, StrategySpec> = rules
            .iter()
            .map(|(p, s)| (p.to_string(), s.clone()))
            .collect();
        JsonPaths::build(&map, &ColumnSpec::new("doc", kind), Some(&key)).unwrap()
    }

    fn run(s: &mut JsonPaths, input: &str) -> Result<String, String> {
        let mut out = BytesMut::new();
        s.mask(input.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn documents_no_path_reaches_are_copied_byte_for_byte() {
        let mut s = paths(&[("$.a.b", StrategySpec::Null)], TypeKind::Json);
        for doc in [
            "{}",
            "[]",
            " 12 ",
            "\"x\"",
            "{\"a\" :\n [1, {\"b\": 2}],\t\"a\": 1e-5 }",
            "{\"x\": {\"b\": \"\\u00e9\\\"\"}, \"y\": [true, false, null, -0.0E+3]}",
        ] {
            assert_eq!(run(&mut s, doc).unwrap(), doc);
        }
    }

    #[test]
    fn escapes_duplicates_and_nesting_are_all_masked() {
        let mut s = paths(
            &[("$..email", StrategySpec::Fixed { value: "R".into() })],
            TypeKind::Json,
        );
        // An escaped key is the same key; a duplicate key is masked twice; `..email` under a
        // matched `email` object is still found.
        let out = run(
            &mut s,
            r#"{"em\u0061il": "a\nb", "email": "c", "email": {"email": "d"}, "l": [{"email": 5}]}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"em\u0061il": "R", "email": "R", "email": {"email": "R"}, "l": [{"email": "R"}]}"#
        );
    }

    #[test]
    fn nulls_replace_whole_nodes_and_indexes_pick_one_element() {
        let mut s = paths(
            &[
                ("$.card", StrategySpec::Null),
                (
                    "$.tags[1]",
                    StrategySpec::Fixed {
                        value: "x\"y".into(),
                    },
                ),
            ],
            TypeKind::Jsonb,
        );
        let mut input = vec![1u8];
        input
            .extend_from_slice(br#"{"card": {"n": "4111", "e": [1, 2]}, "tags": ["a", "b", "c"]}"#);
        let mut out = BytesMut::new();
        s.mask(&input, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &b"\x01{\"card\": null, \"tags\": [\"a\", \"x\\\"y\", \"c\"]}"[..]
        );
    }

    #[test]
    fn malformed_documents_are_refused_without_their_text() {
        let mut s = paths(&[("$.a", StrategySpec::Null)], TypeKind::Json);
        for doc in [
            "{\"a\": SECRETVALUE}",
            "{\"a\" 1}",
            "[1, 2",
            "{\"a\": \"unterminated SECRETVALUE",
            "{} trailing",
            "",
            "{\"a\": 01}",
        ] {
            let mut out = BytesMut::from(&b"kept"[..]);
            let e = s.mask(doc.as_bytes(), &mut out).unwrap_err();
            assert!(e.starts_with("value is not valid JSON"), "{doc}: {e}");
            assert!(!e.contains("SECRET"), "{e}");
            assert_eq!(&out[..], b"kept", "nothing half-written");
        }
    }

    #[test]
    fn numbers_stay_numbers_when_the_mask_is_numeric() {
        let mut s = paths(
            &[
                ("$.n", StrategySpec::Digits { luhn: false }),
                (
                    "$.m",
                    StrategySpec::Fixed {
                        value: "gone".into(),
                    },
                ),
            ],
            TypeKind::Json,
        );
        let out = run(&mut s, r#"{"n": 5551234, "m": 12}"#).unwrap();
        let doc: Json = serde_json::from_str(&out).unwrap();
        assert!(doc["n"].is_number() && doc["n"] != 5551234, "{out}");
        assert_eq!(doc["m"], "gone");
    }

    #[test]
    fn deep_documents_do_not_exhaust_the_stack() {
        let deep = format!("{{\"b\": {}1{}}}", "[".repeat(200_000), "]".repeat(200_000));
        let mut s = paths(&[("$.a", StrategySpec::Null)], TypeKind::Json);
        assert_eq!(run(&mut s, &deep).unwrap(), deep, "skipped, not walked");
        let mut s = paths(&[("$..email", StrategySpec::Null)], TypeKind::Json);
        let e = run(&mut s, &deep).unwrap_err();
        assert!(e.contains("deeper than 256 levels"), "{e}");
        let mut out = BytesMut::new();
        let mut jsonb = vec![1u8];
        jsonb.extend_from_slice(deep.as_bytes());
        assert!(s.mask(&jsonb, &mut out).is_err());
        assert!(out.is_empty(), "the version byte is not left behind");
    }
}
