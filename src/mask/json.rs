//! The `json` strategy: other strategies applied at paths inside json/jsonb values. Paths are
//! `$` followed by `.key`, `[n]`, `[*]` (every element) and `..key` (that key at any depth).
//! Unmasked parts keep their key order and their numbers' exact digits.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use serde_json::Value as Json;

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

#[derive(Clone)]
pub struct JsonPaths {
    rules: Vec<(Vec<Seg>, Box<dyn Strategy>, bool)>,
    jsonb: bool,
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
            rules.push((segs, strategy, is_null));
        }
        Ok(JsonPaths {
            rules,
            jsonb: col.kind == TypeKind::Jsonb,
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
        let mut doc: Json = serde_json::from_slice(text).map_err(|e| {
            format!(
                "value is not valid JSON (at line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        for (segs, strategy, is_null) in &mut self.rules {
            apply(
                &mut doc,
                segs,
                strategy.as_mut(),
                *is_null,
                &mut self.scratch,
            )?;
        }
        if self.jsonb {
            out.put_u8(1);
        }
        let bytes = serde_json::to_vec(&doc).map_err(|e| format!("could not write JSON: {e}"))?;
        out.put_slice(&bytes);
        Ok(Outcome::Value)
    }
}

fn apply(
    node: &mut Json,
    segs: &[Seg],
    strategy: &mut dyn Strategy,
    is_null: bool,
    scratch: &mut BytesMut,
) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        return mask_leaf(node, strategy, is_null, scratch);
    };
    match first {
        Seg::Key(k) => {
            if let Some(child) = node.as_object_mut().and_then(|o| o.get_mut(k)) {
                apply(child, rest, strategy, is_null, scratch)?;
            }
        }
        Seg::Index(i) => {
            if let Some(child) = node.as_array_mut().and_then(|a| a.get_mut(*i)) {
                apply(child, rest, strategy, is_null, scratch)?;
            }
        }
        Seg::Every => {
            if let Some(items) = node.as_array_mut() {
                for child in items {
                    apply(child, rest, strategy, is_null, scratch)?;
                }
            }
        }
        Seg::Descend(k) => match node {
            Json::Object(map) => {
                for (name, child) in map.iter_mut() {
                    if name == k {
                        apply(child, rest, strategy, is_null, scratch)?;
                    } else {
                        apply(child, segs, strategy, is_null, scratch)?;
                    }
                }
            }
            Json::Array(items) => {
                for child in items {
                    apply(child, segs, strategy, is_null, scratch)?;
                }
            }
            _ => {}
        },
    }
    Ok(())
}

/// Strings and numbers are masked through the strategy; `null` empties any node.
fn mask_leaf(
    node: &mut Json,
    strategy: &mut dyn Strategy,
    is_null: bool,
    scratch: &mut BytesMut,
) -> Result<(), String> {
    if is_null {
        *node = Json::Null;
        return Ok(());
    }
    let (text, was_number) = match node {
        Json::String(s) => (std::mem::take(s), false),
        Json::Number(n) => (n.to_string(), true),
        _ => return Ok(()),
    };
    scratch.clear();
    match strategy.mask(text.as_bytes(), scratch)? {
        Outcome::Null => *node = Json::Null,
        Outcome::Value => {
            let masked = String::from_utf8(scratch.to_vec())
                .map_err(|_| "masked JSON value is not UTF-8".to_string())?;
            *node = match (was_number, masked.parse::<serde_json::Number>()) {
                (true, Ok(n)) => Json::Number(n),
                _ => Json::String(masked),
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            text.starts_with(r#"{"z":1.50000000000000000001,"#),
            "order and digits kept: {text}"
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
}
