//! Post-data: what comes after a table's rows (keys, indexes, foreign keys, triggers,
//! settings that would act on the load), then materialized views' data and sequence positions.

use std::collections::{HashMap, HashSet};

use super::{literal, ordered_pre_data, step, Phase, Step};
use crate::catalog::{Catalog, ConstraintKind, QualifiedName, SettingStage, Table, TypeDef};

/// Post-data units, in an order that works when run one after another; each names its table
/// and the tables it needs, so they can also be scheduled per table.
pub fn post_data(cat: &Catalog) -> Vec<Step> {
    let mut out = Vec::new();
    let tables: HashMap<&QualifiedName, &Table> = cat.tables.iter().map(|t| (&t.name, t)).collect();
    let mut ordered: Vec<&Table> = cat.tables.iter().collect();
    ordered.sort_by_key(|t| (t.parent.is_some(), t.name.clone()));
    let index_parent: HashMap<&QualifiedName, &QualifiedName> = cat
        .indexes
        .iter()
        .filter_map(|i| i.parent.as_ref().map(|p| (&i.name, p)))
        .collect();

    // Keys: primary key, unique and exclusion constraints, each on its own table (ONLY), a
    // partition's then attached to its parent's index.
    for t in &ordered {
        for c in t.constraints.iter().filter(|c| {
            matches!(
                c.kind,
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion
            )
        }) {
            let mut sql = format!(
                "ALTER TABLE ONLY {} ADD CONSTRAINT {} {}",
                t.name.quoted, c.quoted, c.definition
            );
            if let Some(parent_index) = c.index.as_ref().and_then(|i| index_parent.get(i)) {
                sql += &format!(
                    ";\nALTER INDEX {} ATTACH PARTITION {}",
                    parent_index.quoted,
                    c.index
                        .as_ref()
                        .map(|i| i.quoted.as_str())
                        .unwrap_or_default()
                );
            }
            out.push(step(
                Phase::Keys,
                Some(&t.name),
                format!("constraint {} on {}", c.name, t.name),
                sql,
            ));
        }
    }
    // CHECK constraints marked NOT VALID: rows that break them may exist and must load, so
    // they are added after the table's rows, still not valid.
    for t in &ordered {
        for c in t.constraints.iter().filter(|c| {
            c.kind == ConstraintKind::Check
                && c.is_local
                && !c.inherited_from_parent
                && !c.validated
        }) {
            out.push(step(
                Phase::Keys,
                Some(&t.name),
                format!("constraint {} on {}", c.name, t.name),
                format!(
                    "ALTER TABLE ONLY {} ADD CONSTRAINT {} {}",
                    t.name.quoted, c.quoted, c.definition
                ),
            ));
        }
    }
    // Domain CHECK constraints marked NOT VALID: added after every row is in.
    for t in &cat.types {
        if let TypeDef::Domain { checks, .. } = &t.def {
            for (name, def) in checks.iter().filter(|(_, d)| d.ends_with(" NOT VALID")) {
                out.push(step(
                    Phase::Views,
                    None,
                    format!("constraint {name} on domain {}", t.name),
                    format!("ALTER DOMAIN {} ADD CONSTRAINT {name} {def}", t.name.quoted),
                ));
            }
        }
        for c in &t.constraint_comments {
            out.push(step(
                Phase::Views,
                None,
                format!("comment on a constraint of domain {}", t.name),
                c.clone(),
            ));
        }
    }
    // Indexes not behind a constraint (parents' first: children attach to them).
    let view_names: HashSet<&QualifiedName> = cat.views.iter().map(|v| &v.name).collect();
    let mut indexes: Vec<&crate::catalog::Index> = cat
        .indexes
        .iter()
        .filter(|i| i.constraint.is_none() && !view_names.contains(&i.table))
        .collect();
    indexes.sort_by_key(|i| (i.parent.is_some(), i.name.clone()));
    for i in indexes {
        let mut sql = i.definition.clone();
        if let Some(p) = &i.parent {
            sql += &format!(
                ";\nALTER INDEX {} ATTACH PARTITION {}",
                p.quoted, i.name.quoted
            );
        }
        out.push(step(
            Phase::Indexes,
            Some(&i.table),
            format!("index {}", i.name),
            sql,
        ));
        if let Some(c) = &i.comment {
            out.push(step(
                Phase::Indexes,
                Some(&i.table),
                format!("comment on index {}", i.name),
                format!("COMMENT ON INDEX {} IS {}", i.name.quoted, literal(c)),
            ));
        }
    }
    // Foreign keys declared on each table (a partitioned parent's reach its partitions).
    for t in &ordered {
        for c in t
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::ForeignKey && !c.inherited_from_parent)
        {
            let only = if t.is_partitioned() { "" } else { "ONLY " };
            let mut s = step(
                Phase::ForeignKeys,
                Some(&t.name),
                format!("foreign key {} on {}", c.name, t.name),
                format!(
                    "ALTER TABLE {only}{} ADD CONSTRAINT {} {}",
                    t.name.quoted, c.quoted, c.definition
                ),
            );
            if let Some((referenced, _)) = &c.references {
                if tables.contains_key(referenced) {
                    s.needs.push(referenced.clone());
                }
            }
            out.push(s);
        }
    }
    for tr in &cat.triggers {
        out.push(step(
            Phase::Triggers,
            Some(&tr.table),
            format!("trigger {} on {}", tr.name, tr.table),
            tr.definition.clone(),
        ));
    }
    // Settings after the triggers: a comment on a trigger needs it.
    for st in cat.settings.iter().filter(|st| {
        st.stage != SettingStage::WithTable
            && !(st.stage == SettingStage::WithIndexes && view_names.contains(&st.table))
    }) {
        let phase = if st.stage == SettingStage::WithIndexes {
            Phase::Indexes
        } else {
            Phase::Security
        };
        out.push(step(
            phase,
            Some(&st.table),
            st.object.clone(),
            st.sql.clone(),
        ));
    }
    // Materialized views were created empty with the schema: filled once the rows are in,
    // in creation order (one may read another), then indexed.
    let (_, matviews, _) = ordered_pre_data(cat);
    for name in &matviews {
        let Some(v) = cat.views.iter().find(|v| &v.name == name) else {
            continue;
        };
        if v.populated {
            out.push(step(
                Phase::Views,
                None,
                format!("materialized view {} data", v.name),
                format!("REFRESH MATERIALIZED VIEW {}", v.name.quoted),
            ));
        }
        for i in cat.indexes.iter().filter(|i| i.table == v.name) {
            out.push(step(
                Phase::Views,
                None,
                format!("index {}", i.name),
                i.definition.clone(),
            ));
            if let Some(c) = &i.comment {
                out.push(step(
                    Phase::Views,
                    None,
                    format!("comment on index {}", i.name),
                    format!("COMMENT ON INDEX {} IS {}", i.name.quoted, literal(c)),
                ));
            }
        }
        // A materialized view's index settings (CLUSTER ON) once its indexes exist.
        for st in cat
            .settings
            .iter()
            .filter(|st| st.table == v.name && st.stage == SettingStage::WithIndexes)
        {
            out.push(step(Phase::Views, None, st.object.clone(), st.sql.clone()));
        }
    }
    // Publications, once their tables (and those tables' replica identities) exist.
    let table_names: HashSet<&QualifiedName> = cat.tables.iter().map(|t| &t.name).collect();
    for p in &cat.publications {
        let mut sql = p.create.clone();
        for (_, add) in p.tables.iter().filter(|(t, _)| table_names.contains(t)) {
            sql += &format!(";\n{add}");
        }
        if let Some(c) = &p.comment {
            sql += &format!(";\nCOMMENT ON PUBLICATION {} IS {}", p.name, literal(c));
        }
        let mut s = step(Phase::Views, None, format!("publication {}", p.name), sql);
        s.tolerant = true;
        out.push(s);
    }
    // Privileges (with --privileges), an object's together; after every object they name.
    let mut i = 0;
    while i < cat.grants.len() {
        let object = &cat.grants[i].object;
        let n = cat.grants[i..]
            .iter()
            .take_while(|g| &g.object == object)
            .count();
        let sql = cat.grants[i..i + n]
            .iter()
            .map(|g| g.sql.as_str())
            .collect::<Vec<_>>()
            .join(";\n");
        let mut s = step(Phase::Views, None, format!("privileges on {object}"), sql);
        s.tolerant = true;
        out.push(s);
        i += n;
    }
    for s in &cat.sequences {
        if let Some((value, called)) = s.last_value {
            out.push(step(
                Phase::SequenceValues,
                s.owned_by.as_ref().map(|(t, _)| t),
                format!("sequence {} value", s.name),
                format!(
                    "SELECT pg_catalog.setval({}, {value}, {called})",
                    literal(&s.name.quoted)
                ),
            ));
        }
    }
    out
}
