//! What depends on what, from `pg_depend`, in terms of the objects the schema layer creates:
//! a table's row type, its columns, its CHECK constraints and a view's rewrite rule all stand
//! for the table or view; an array type stands for its element type; a multirange for its
//! range; a domain constraint for its domain. Column defaults are kept apart, so that one
//! calling a function can be set after the function even when the function needs the table.

use std::collections::HashMap;

use super::queries::{rows, Get};
use super::*;

/// An object the schema layer creates, by OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjRef {
    /// A table, partitioned table, view, materialized view or sequence.
    Relation(u32),
    /// An enum, domain, composite or range type.
    Type(u32),
    /// A function, procedure or aggregate.
    Function(u32),
    /// A column's default: (table, column number).
    Default(u32, i16),
    /// A standalone object (collation, operator, ...): its catalog's letter and OID.
    Object(char, u32),
}

/// `from` can only be created once `to` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dep {
    pub from: ObjRef,
    pub to: ObjRef,
}

/// How a catalog row stands for a created object.
enum Stand {
    Rel(u32),
    Type(u32),
    /// An array type: its element type (which may itself stand for something else).
    ElementOf(u32),
    Default(u32, i16),
    Nothing,
}

/// The catalogs of standalone objects and their letters (`ObjectKind::class`).
const OBJECT_CLASSES: [(&str, char); 8] = [
    ("pg_collation", 'l'),
    ("pg_cast", 's'),
    ("pg_operator", 'o'),
    ("pg_opfamily", 'f'),
    ("pg_opclass", 'q'),
    ("pg_conversion", 'v'),
    ("pg_ts_dict", 'h'),
    ("pg_ts_config", 'g'),
];

/// SQL mapping a class OID column to its letter (`x` for any other catalog).
fn object_class(column: &str) -> String {
    let cases: String = OBJECT_CLASSES
        .iter()
        .map(|(c, l)| format!(" WHEN '{c}'::regclass THEN '{l}'"))
        .collect();
    format!("CASE {column}{cases} ELSE 'x' END")
}

/// The dependencies between user objects (OIDs past the built-in range).
pub async fn load(conn: &mut Connection) -> Result<Vec<Dep>, Error> {
    let mut stands: HashMap<(char, u32), Stand> = HashMap::new();
    for r in rows(conn, "dependency map",
        "SELECT 'y', t.oid,
                CASE WHEN EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid) THEN 'a'
                     WHEN t.typtype = 'm' THEN 't'
                     WHEN t.typrelid <> 0 AND c.relkind <> 'c' THEN 'r' ELSE 't' END,
                CASE WHEN EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid) THEN t.typelem
                     WHEN t.typtype = 'm' THEN (SELECT rngtypid FROM pg_range WHERE rngmultitypid = t.oid)
                     WHEN t.typrelid <> 0 AND c.relkind <> 'c' THEN t.typrelid ELSE t.oid END, 0
         FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid WHERE t.oid >= 16384
         UNION ALL SELECT 'w', r.oid, 'r', r.ev_class, 0 FROM pg_rewrite r WHERE r.oid >= 16384
         UNION ALL SELECT 'd', a.oid, 'd', a.adrelid, a.adnum FROM pg_attrdef a WHERE a.oid >= 16384
         UNION ALL SELECT 'k', c.oid,
                CASE WHEN c.contypid <> 0 THEN 't' WHEN c.contype = 'c' AND c.convalidated THEN 'r' ELSE 'x' END,
                CASE WHEN c.contypid <> 0 THEN c.contypid ELSE c.conrelid END, 0
         FROM pg_constraint c WHERE c.oid >= 16384").await?
    {
        let g = Get(&r, "dependency map");
        let class = g.s(0)?.chars().next().unwrap_or(' ');
        let target = g.u32(3)?;
        let stand = match g.s(2)?.as_str() {
            "a" => Stand::ElementOf(target),
            "t" => Stand::Type(target),
            "r" => Stand::Rel(target),
            "d" => Stand::Default(target, g.s(4)?.parse().map_err(|_| bad_row("dependency map"))?),
            _ => Stand::Nothing,
        };
        stands.insert((class, g.u32(1)?), stand);
    }
    let resolve = |class: char, oid: u32| -> Option<ObjRef> {
        let (mut class, mut oid) = (class, oid);
        // Arrays of arrays do not exist, but a bound keeps a bad catalog from looping.
        for _ in 0..4 {
            match class {
                'c' => return Some(ObjRef::Relation(oid)),
                'p' => return Some(ObjRef::Function(oid)),
                c if OBJECT_CLASSES.iter().any(|(_, l)| *l == c) => {
                    return Some(ObjRef::Object(c, oid))
                }
                _ => {}
            }
            match stands.get(&(class, oid))? {
                Stand::Rel(r) => return Some(ObjRef::Relation(*r)),
                Stand::Type(t) => return Some(ObjRef::Type(*t)),
                Stand::Default(t, n) => return Some(ObjRef::Default(*t, *n)),
                Stand::Nothing => return None,
                Stand::ElementOf(e) => {
                    (class, oid) = ('y', *e);
                }
            }
        }
        None
    };
    let mut out = Vec::new();
    for r in rows(conn, "dependencies", &format!(
        "SELECT CASE d.classid WHEN 'pg_class'::regclass THEN 'c' WHEN 'pg_type'::regclass THEN 'y' WHEN 'pg_proc'::regclass THEN 'p'
                    WHEN 'pg_rewrite'::regclass THEN 'w' WHEN 'pg_attrdef'::regclass THEN 'd' WHEN 'pg_constraint'::regclass THEN 'k'
                    ELSE {objects} END, d.objid,
                CASE d.refclassid WHEN 'pg_class'::regclass THEN 'c' WHEN 'pg_type'::regclass THEN 'y' WHEN 'pg_proc'::regclass THEN 'p'
                    ELSE {refobjects} END, d.refobjid
         FROM pg_depend d
         WHERE d.deptype IN ('n', 'a', 'i') AND d.objid >= 16384 AND d.refobjid >= 16384
           AND d.classid IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass, 'pg_rewrite'::regclass,
                             'pg_attrdef'::regclass, 'pg_constraint'::regclass, {classes})
           AND d.refclassid IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass, {classes})
           -- A sequence OWNED BY a column is created before its table (the default needs it).
           AND NOT (d.deptype = 'a' AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid <> 0)
         GROUP BY 1, 2, 3, 4",
        objects = object_class("d.classid"), refobjects = object_class("d.refclassid"), classes = OBJECT_CLASSES.iter().map(|(c, _)| format!("'{c}'::regclass")).collect::<Vec<_>>().join(", "))).await?
    {
        let g = Get(&r, "dependencies");
        let class = |i: usize| g.s(i).map(|s| s.chars().next().unwrap_or(' '));
        let (Some(from), Some(to)) = (resolve(class(0)?, g.u32(1)?), resolve(class(2)?, g.u32(3)?)) else {
            continue;
        };
        if from != to {
            out.push(Dep { from, to });
        }
    }
    out.sort_by_key(|d| (d.from, d.to));
    out.dedup();
    Ok(out)
}
