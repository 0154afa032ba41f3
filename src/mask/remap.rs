//! Type OIDs inside binary values: arrays carry their element type's OID and records carry
//! each field's, and a user-defined type has different OIDs in source and target. This
//! rewrites them in flight (recursively through nested arrays and records), so such columns
//! travel in binary like any other.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::strategies::{Outcome, Strategy};

/// What a user-defined type OID holds, for recursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidKind {
    /// A composite (record) type: fields carry OIDs.
    Composite,
    /// An array type: the element OID is in the header; elements may need recursion.
    Array { elem: u32 },
    /// Anything else: no OIDs inside.
    Plain,
}

/// The first OID PostgreSQL gives to objects created after initdb: built-in types below it
/// have the same OID in every database.
pub const FIRST_NORMAL_OID: u32 = 16384;

/// Source OID → (target OID, kind) for every user-defined type.
#[derive(Debug, Default)]
pub struct OidMap {
    pub map: HashMap<u32, (u32, OidKind)>,
}

impl OidMap {
    /// Whether binary values of type `oid` embed OIDs of user types (a composite, or an array
    /// of user-defined elements), which must be rewritten to the target's.
    pub fn remaps(&self, oid: u32) -> bool {
        match self.map.get(&oid) {
            Some((_, OidKind::Composite)) => true,
            Some((_, OidKind::Array { elem })) => *elem >= FIRST_NORMAL_OID,
            _ => false,
        }
    }

    fn target(&self, oid: u32) -> Result<u32, String> {
        if oid < FIRST_NORMAL_OID {
            return Ok(oid);
        }
        self.map
            .get(&oid)
            .map(|m| m.0)
            .ok_or_else(|| format!("type OID {oid} has no counterpart in the target"))
    }

    fn kind(&self, oid: u32) -> OidKind {
        self.map.get(&oid).map(|m| m.1).unwrap_or(OidKind::Plain)
    }
}

/// Copies a value, rewriting the OIDs it embeds.
#[derive(Clone)]
pub struct Remap {
    map: Arc<OidMap>,
    /// The column's type: an array or a composite.
    oid: u32,
}

impl Remap {
    pub fn new(map: Arc<OidMap>, oid: u32) -> Remap {
        Remap { map, oid }
    }
}

impl Strategy for Remap {
    fn mask(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Outcome, String> {
        rewrite(&self.map, self.map.kind(self.oid), input, out)?;
        Ok(Outcome::Value)
    }
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err("value is truncated".into());
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn i32_of(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn rewrite(map: &OidMap, kind: OidKind, input: &[u8], out: &mut BytesMut) -> Result<(), String> {
    let mut r = input;
    match kind {
        OidKind::Plain => out.put_slice(input),
        OidKind::Array { .. } => {
            let ndim = i32_of(take(&mut r, 4)?);
            let flags = take(&mut r, 4)?;
            let elem = i32_of(take(&mut r, 4)?) as u32;
            out.put_i32(ndim);
            out.put_slice(flags);
            out.put_u32(map.target(elem)?);
            let mut count: i64 = if ndim == 0 { 0 } else { 1 };
            for _ in 0..ndim.max(0) {
                let dim = take(&mut r, 8)?;
                count *= i32_of(dim).max(0) as i64;
                out.put_slice(dim);
            }
            let elem_kind = map.kind(elem);
            for _ in 0..count {
                let len = i32_of(take(&mut r, 4)?);
                if len < 0 {
                    out.put_i32(-1);
                    continue;
                }
                let value = take(&mut r, len as usize)?;
                put_nested(map, elem_kind, value, out)?;
            }
        }
        OidKind::Composite => {
            let n = i32_of(take(&mut r, 4)?);
            out.put_i32(n);
            for _ in 0..n.max(0) {
                let oid = i32_of(take(&mut r, 4)?) as u32;
                out.put_u32(map.target(oid)?);
                let len = i32_of(take(&mut r, 4)?);
                if len < 0 {
                    out.put_i32(-1);
                    continue;
                }
                let value = take(&mut r, len as usize)?;
                put_nested(map, map.kind(oid), value, out)?;
            }
        }
    }
    if !r.is_empty() && kind != OidKind::Plain {
        return Err("value has trailing bytes".into());
    }
    Ok(())
}

/// A nested value with its length word, rewritten when it holds OIDs itself.
fn put_nested(map: &OidMap, kind: OidKind, value: &[u8], out: &mut BytesMut) -> Result<(), String> {
    if kind == OidKind::Plain {
        out.put_i32(value.len() as i32);
        out.put_slice(value);
        return Ok(());
    }
    let at = out.len();
    out.put_i32(0);
    rewrite(map, kind, value, out)?;
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_nested_records_are_remapped() {
        let mut m = OidMap::default();
        m.map.insert(20000, (30000, OidKind::Plain)); // an enum
        m.map.insert(20001, (30001, OidKind::Array { elem: 20000 })); // its array
        m.map.insert(20002, (30002, OidKind::Composite)); // a record
        let map = Arc::new(m);
        // enum[] with two elements and a NULL.
        let mut arr = BytesMut::new();
        arr.put_i32(1);
        arr.put_i32(1);
        arr.put_u32(20000);
        arr.put_i32(3);
        arr.put_i32(1);
        for v in [Some(&b"calm"[..]), None, Some(b"angry")] {
            match v {
                Some(v) => {
                    arr.put_i32(v.len() as i32);
                    arr.put_slice(v);
                }
                None => arr.put_i32(-1),
            }
        }
        let mut out = BytesMut::new();
        Remap::new(map.clone(), 20001).mask(&arr, &mut out).unwrap();
        assert_eq!(&out[8..12], &30000u32.to_be_bytes());
        assert_eq!(out.len(), arr.len());
        // A record holding a text and the enum array.
        let mut rec = BytesMut::new();
        rec.put_i32(2);
        rec.put_u32(25);
        rec.put_i32(2);
        rec.put_slice(b"hi");
        rec.put_u32(20001);
        rec.put_i32(arr.len() as i32);
        rec.put_slice(&arr);
        let mut out = BytesMut::new();
        Remap::new(map.clone(), 20002).mask(&rec, &mut out).unwrap();
        assert_eq!(&out[14..18], &30001u32.to_be_bytes(), "field OID");
        assert_eq!(&out[30..34], &30000u32.to_be_bytes(), "nested element OID");
        // Truncated values are errors, not panics.
        for cut in 0..rec.len() {
            assert!(
                Remap::new(map.clone(), 20002)
                    .mask(&rec[..cut], &mut BytesMut::new())
                    .is_err(),
                "cut {cut}"
            );
        }
    }
}
