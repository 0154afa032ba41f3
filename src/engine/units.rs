//! Work units and their schedule, as pure functions: each table or partition is a unit, a big
//! table is cut into ctid-range chunks; units run largest first, and with an existing target
//! schema a unit waits until the tables its foreign keys reference are loaded.

use std::collections::HashSet;

use crate::catalog::{Catalog, ConstraintKind, QualifiedName};

/// A unit of work: one table or partition, or a ctid range of a big one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub table: QualifiedName,
    pub size: i64,
    pub chunk: Option<Chunk>,
}

/// Blocks `from..to` of a table. The last chunk has no upper end, so rows past the planned
/// size are not missed. Bounds are planned once and recorded, so a resumed run reads the
/// same ranges whatever VACUUM or growth did to the table's size since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub count: usize,
    pub from: i64,
    pub to: Option<i64>,
}

impl Unit {
    /// The name its checkpoint is recorded under: `schema.table`, or `schema.table#i/n`.
    pub fn key(&self) -> String {
        match self.chunk {
            None => self.table.to_string(),
            Some(c) => format!("{}#{}/{}", self.table, c.index + 1, c.count),
        }
    }

    /// The row filter of a chunk (empty for a whole table).
    pub fn predicate(&self) -> String {
        match self.chunk {
            None => String::new(),
            Some(c) => format!(
                " WHERE ctid >= '({},0)'::tid{}",
                c.from,
                c.to.map(|t| format!(" AND ctid < '({t},0)'::tid"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Units for one table of `size_bytes` over `pages` blocks: chunks of about `split_bytes`
/// when it is larger (0 never splits).
pub fn plan_table(
    table: &QualifiedName,
    size_bytes: i64,
    pages: i64,
    split_bytes: i64,
) -> Vec<Unit> {
    if split_bytes <= 0 || size_bytes <= split_bytes || pages <= 1 {
        return vec![Unit {
            table: table.clone(),
            size: size_bytes,
            chunk: None,
        }];
    }
    let count = ((size_bytes + split_bytes - 1) / split_bytes).min(pages) as usize;
    let step = (pages + count as i64 - 1) / count as i64;
    (0..count)
        .map(|index| Unit {
            table: table.clone(),
            size: size_bytes / count as i64,
            chunk: Some(Chunk {
                index,
                count,
                from: index as i64 * step,
                to: (index + 1 < count).then(|| (index as i64 + 1) * step),
            }),
        })
        .collect()
}

/// Units for every data table of the catalog.
pub fn plan(cat: &Catalog, split_bytes: i64) -> Vec<Unit> {
    cat.data_tables()
        .flat_map(|t| plan_table(&t.name, t.size_bytes, t.pages, split_bytes))
        .collect()
}

/// Largest first; ties by name, so two runs order alike.
pub fn sort_largest_first(units: &mut [Unit]) {
    units.sort_by(|a, b| b.size.cmp(&a.size).then(a.key().cmp(&b.key())));
}

/// Loaded: copied, or a partitioned table whose partitions are all loaded.
pub fn is_loaded(cat: &Catalog, loaded: &HashSet<QualifiedName>, t: &QualifiedName) -> bool {
    loaded.contains(t)
        || (cat
            .table(&t.schema, &t.name)
            .is_some_and(|x| x.is_partitioned())
            && cat.children(t).all(|c| is_loaded(cat, loaded, &c.name)))
}

/// Whether the tables `unit`'s foreign keys reference (its own, or its partitioned parent's)
/// are loaded. Only matters when the target's foreign keys are live during the load.
pub fn references_loaded(cat: &Catalog, loaded: &HashSet<QualifiedName>, unit: &Unit) -> bool {
    let owner = cat.table(&unit.table.schema, &unit.table.name);
    let above: Vec<QualifiedName> = owner
        .map(|t| cat.ancestors(t).iter().map(|a| a.name.clone()).collect())
        .unwrap_or_default();
    cat.tables
        .iter()
        .filter(|t| t.name == unit.table || above.contains(&t.name))
        .flat_map(|t| &t.constraints)
        .all(|c| {
            c.kind != ConstraintKind::ForeignKey
                || c.references.as_ref().is_none_or(|(r, _)| {
                    above.contains(r) || *r == unit.table || is_loaded(cat, loaded, r)
                })
        })
}

/// What a worker should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Unit(Unit),
    /// Every remaining unit waits for a table another worker is loading.
    Wait,
    Done,
}

/// Takes the next unit from `queue` (largest first). With `ordered` (live foreign keys on the
/// target), a unit whose referenced tables are not loaded waits while others are in flight;
/// when nothing is in flight (a cycle of references) it goes anyway.
pub fn next(
    cat: &Catalog,
    queue: &mut std::collections::VecDeque<Unit>,
    loaded: &HashSet<QualifiedName>,
    in_flight: usize,
    ordered: bool,
) -> Next {
    if queue.is_empty() {
        return Next::Done;
    }
    if !ordered {
        return queue.pop_front().map_or(Next::Done, Next::Unit);
    }
    if let Some(i) = queue.iter().position(|u| references_loaded(cat, loaded, u)) {
        return queue.remove(i).map_or(Next::Done, Next::Unit);
    }
    if in_flight > 0 {
        Next::Wait
    } else {
        queue.pop_front().map_or(Next::Done, Next::Unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Constraint, Table};
    use std::collections::VecDeque;

    fn name(n: &str) -> QualifiedName {
        QualifiedName {
            schema: "public".into(),
            name: n.into(),
            quoted: format!("public.{n}"),
        }
    }

    fn table(n: &str, size: i64, refs: &[&str]) -> Table {
        Table {
            oid: 0,
            name: name(n),
            unlogged: false,
            columns: vec![],
            constraints: refs
                .iter()
                .map(|r| Constraint {
                    name: format!("{n}_{r}_fk"),
                    quoted: format!("{n}_{r}_fk"),
                    kind: ConstraintKind::ForeignKey,
                    definition: String::new(),
                    is_local: true,
                    inherited_from_parent: false,
                    index: None,
                    columns: vec![],
                    references: Some((name(r), vec![])),
                    validated: true,
                })
                .collect(),
            partitioning: None,
            parent: None,
            inherits: Vec::new(),
            of_type: None,
            bound: None,
            estimated_rows: 0,
            size_bytes: size,
            pages: size / 8192,
            comment: None,
            readable: true,
            row_security: false,
        }
    }

    #[test]
    fn chunks_cover_every_block_and_the_last_is_open_ended() {
        let units = plan_table(&name("big"), 10 * 8192 * 100, 1000, 3 * 8192 * 100);
        assert_eq!(units.len(), 4);
        let chunks: Vec<Chunk> = units.iter().map(|u| u.chunk.unwrap()).collect();
        assert_eq!(chunks[0].from, 0);
        for w in chunks.windows(2) {
            assert_eq!(w[0].to, Some(w[1].from), "no gap, no overlap");
        }
        assert_eq!(chunks[3].to, None);
        assert_eq!(units[1].key(), "public.big#2/4");
        assert_eq!(
            units[3].predicate(),
            format!(" WHERE ctid >= '({},0)'::tid", chunks[3].from)
        );
    }

    #[test]
    fn small_tables_and_zero_split_are_one_unit() {
        assert_eq!(plan_table(&name("t"), 100, 1, 10).len(), 1);
        assert_eq!(plan_table(&name("t"), 1 << 40, 1 << 20, 0).len(), 1);
        assert_eq!(plan_table(&name("t"), 100, 50, 1000)[0].predicate(), "");
    }

    #[test]
    fn largest_first_and_referenced_tables_first_when_ordered() {
        let cat = Catalog {
            tables: vec![
                table("orders", 900, &["customers"]),
                table("customers", 100, &[]),
            ],
            ..Catalog::default()
        };
        let mut units = plan(&cat, 0);
        sort_largest_first(&mut units);
        assert_eq!(units[0].table, name("orders"));
        let mut queue: VecDeque<Unit> = units.clone().into();
        let mut loaded = HashSet::new();
        // Unordered: the biggest goes first.
        assert_eq!(
            next(&cat, &mut queue.clone(), &loaded, 0, false),
            Next::Unit(units[0].clone())
        );
        // Ordered: customers first; orders waits while customers is in flight.
        assert_eq!(
            next(&cat, &mut queue, &loaded, 0, true),
            Next::Unit(units[1].clone())
        );
        assert_eq!(next(&cat, &mut queue, &loaded, 1, true), Next::Wait);
        loaded.insert(name("customers"));
        assert_eq!(
            next(&cat, &mut queue, &loaded, 0, true),
            Next::Unit(units[0].clone())
        );
        assert_eq!(next(&cat, &mut queue, &loaded, 0, true), Next::Done);
    }

    #[test]
    fn a_cycle_of_references_does_not_wait_forever() {
        let cat = Catalog {
            tables: vec![table("a", 10, &["b"]), table("b", 10, &["a"])],
            ..Catalog::default()
        };
        let mut queue: VecDeque<Unit> = plan(&cat, 0).into();
        assert!(matches!(
            next(&cat, &mut queue, &HashSet::new(), 0, true),
            Next::Unit(_)
        ));
    }
}
