//! The config checked against a database's catalog: every table and column it names must
//! exist, partitions take their rules from their partitioned parent, strategies must fit
//! their columns, keys keep their uniqueness, and foreign keys keep joining: masking on a
//! referenced key is carried to the columns that reference it. Every problem is reported,
//! not just the first.

use std::collections::HashMap;

use super::{ConfigError, MaskingConfig, Unlisted};
use crate::catalog::{Catalog, Column, ConstraintKind, QualifiedName, Table};
use std::sync::Arc;

use crate::mask::remap::{OidMap, Remap};
use crate::mask::spec::HashEncoding;
use crate::mask::{build, ColumnAction, ColumnSpec, MaskKey, MaskPlan, StrategySpec};
use crate::types::TypeKind;

/// Where a column's strategy comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleSource {
    Config,
    /// A partition's column, configured on its partitioned parent.
    Parent(QualifiedName),
    /// A foreign-key column, masked like the key it references (`schema.table.column`).
    Propagated(String),
    /// Not in the config: kept (`unlisted_columns = "keep"`).
    Unlisted,
}

#[derive(Debug, Clone)]
pub struct ResolvedColumn {
    pub name: String,
    pub quoted: String,
    pub type_name: String,
    pub type_oid: u32,
    pub strategy: StrategySpec,
    pub source: RuleSource,
    /// Generated columns are computed by the target: not copied.
    pub copied: bool,
    spec: Option<ColumnSpec>,
}

#[derive(Debug, Clone)]
pub struct ResolvedTable {
    pub table: QualifiedName,
    pub parent: Option<QualifiedName>,
    /// A partitioned parent: it holds no rows; its partitions are the ones copied.
    pub partitioned: bool,
    /// Columns whose type has no binary I/O: the table is copied in text format.
    pub text_fallback: Vec<String>,
    pub columns: Vec<ResolvedColumn>,
}

impl ResolvedTable {
    /// The rewriter's plan for this table's COPY (copied columns, in order).
    /// The plan for one unit of this table. `oids` maps user type OIDs to the target's: a
    /// kept column whose binary values embed them (arrays and records of user types) gets
    /// its OIDs rewritten, unless the table travels as text (`text_fallback`: no OIDs there).
    pub fn plan(&self, key: Option<&MaskKey>, oids: &Arc<OidMap>) -> Result<MaskPlan, String> {
        self.plan_in(key, oids, self.text_fallback.is_empty())
    }

    /// The plan for COPY in binary or, for a unit redone as text, in text format.
    pub fn plan_in(
        &self,
        key: Option<&MaskKey>,
        oids: &Arc<OidMap>,
        binary: bool,
    ) -> Result<MaskPlan, String> {
        let mut columns = Vec::new();
        for c in self.columns.iter().filter(|c| c.copied) {
            let action = match &c.strategy {
                StrategySpec::Keep if binary && oids.remaps(c.type_oid) => {
                    ColumnAction::Mask(Box::new(Remap::new(oids.clone(), c.type_oid)))
                }
                StrategySpec::Keep => ColumnAction::Keep,
                StrategySpec::Default => ColumnAction::Omit,
                // NULL is written the same for every type.
                StrategySpec::Null if c.spec.is_none() => ColumnAction::Mask(
                    build(
                        &StrategySpec::Null,
                        &ColumnSpec::new(&c.name, TypeKind::Bytea),
                        key,
                    )
                    .map_err(|e| format!("column \"{}\": {e}", c.name))?,
                ),
                s => {
                    let spec = c.spec.as_ref().ok_or_else(|| {
                        format!(
                            "column \"{}\": no strategy can read type {}",
                            c.name, c.type_name
                        )
                    })?;
                    ColumnAction::Mask(
                        build(s, spec, key).map_err(|e| format!("column \"{}\": {e}", c.name))?,
                    )
                }
            };
            columns.push((c.name.clone(), action));
        }
        Ok(MaskPlan { columns })
    }

    /// Every masked column can be masked in text format too (text values are the same bytes
    /// in both formats; other types are not).
    pub fn text_safe(&self) -> bool {
        self.columns.iter().filter(|c| c.copied).all(|c| {
            matches!(
                c.strategy,
                StrategySpec::Keep | StrategySpec::Default | StrategySpec::Null
            ) || c.spec.as_ref().is_some_and(|s| s.kind == TypeKind::Text)
        })
    }

    pub fn is_masked(&self) -> bool {
        self.columns
            .iter()
            .any(|c| c.copied && c.strategy != StrategySpec::Keep)
    }
}

/// The strategy view of a catalog column; `None` for types no strategy reads.
pub fn column_spec(col: &Column) -> Option<ColumnSpec> {
    if col.is_enum {
        let kind = if col.type_name.ends_with("[]") {
            TypeKind::Array(Box::new(TypeKind::Text))
        } else {
            TypeKind::Text
        };
        let mut spec = ColumnSpec::new(&col.name, kind);
        spec.not_null = col.not_null;
        return Some(spec);
    }
    ColumnSpec::from_type_name(&col.name, &col.base_type_name, col.not_null)
}

/// Whether `oid` is a domain with a DEFAULT.
fn domain_default(cat: &Catalog, oid: u32) -> bool {
    cat.types.iter().any(|t| {
        t.oid == oid
            && matches!(
                &t.def,
                crate::catalog::TypeDef::Domain {
                    default: Some(_),
                    ..
                }
            )
    })
}

/// Strategies that keep distinct values distinct, so keys and unique indexes survive
/// (`hash` when enough of it is kept: see `hash_bits`).
fn keeps_uniqueness(s: &StrategySpec) -> bool {
    matches!(
        s,
        StrategySpec::Keep
            | StrategySpec::Tokenize
            | StrategySpec::Email { .. }
            | StrategySpec::Hash { .. }
    )
}

/// The bits of the keyed hash a column keeps: its `length`, cut again to the column's own
/// length (`varchar(6)` keeps 6 hex digits, 24 bits), and the bits per character.
fn hash_bits(length: Option<usize>, encoding: &HashEncoding, spec: &ColumnSpec) -> (u32, u32) {
    if spec.kind == TypeKind::Bytea {
        return (8 * length.unwrap_or(32).min(32) as u32, 8);
    }
    let (full, per_char) = match encoding {
        HashEncoding::Hex => (64, 4),
        // 32 bytes in base64: 43 characters carry them, then one '=' of padding.
        HashEncoding::Base64 => (43, 6),
    };
    let chars = length
        .unwrap_or(full)
        .min(spec.max_chars.unwrap_or(full))
        .min(full);
    (chars as u32 * per_char, per_char)
}

/// Why `strategy` on `col`, a column of the key or unique index `constraint`, could break
/// that uniqueness, if it could.
fn uniqueness_problem(
    strategy: &StrategySpec,
    col: &Column,
    spec: Option<&ColumnSpec>,
    constraint: &str,
    rows: f64,
) -> Option<String> {
    if !keeps_uniqueness(strategy) {
        return Some(format!(
            "strategy \"{}\" can make distinct values equal, but the column is used by the key or unique index \"{constraint}\" (as a column, in an expression or in its predicate): use tokenize (or email, or a hash long enough) to keep values unique",
            strategy.name()
        ));
    }
    if !col.deterministic {
        return Some(format!(
            "the column's collation is nondeterministic (values that differ in case or accents can be equal), so masked values that differ only that way would break the key or unique index \"{constraint}\": keep the column, or give it a deterministic collation"
        ));
    }
    if let (StrategySpec::Hash { length, encoding }, Some(spec)) = (strategy, spec) {
        let (bits, per_char) = hash_bits(*length, encoding, spec);
        let needed = bits_needed(rows);
        if bits < needed {
            let chars = needed.div_ceil(per_char);
            let unit = if spec.kind == TypeKind::Bytea {
                "bytes"
            } else {
                "characters"
            };
            return Some(format!(
                "hash keeps {bits} bits here (its length and the column's), too few to stay unique over about {rows:.0} rows (the key or unique index \"{constraint}\" would likely see a collision): keep at least {chars} {unit}{}, or use tokenize",
                if spec.max_chars.is_some_and(|m| m < chars as usize) {
                    " (the column is too short for that: widen it)"
                } else {
                    ""
                }
            ));
        }
    }
    None
}

/// The rows a unique key is checked against: the estimate, but never fewer than this (tables
/// grow, and an unanalyzed table estimates nothing).
const MIN_ROWS_FOR_COLLISIONS: f64 = 10_000.0;

/// The most expected collisions (pairs) tolerated on a unique column: n² / 2^(bits+1).
const MAX_EXPECTED_COLLISIONS: f64 = 1e-3;

/// Bits of a keyed hash that keep `rows` values unique with the tolerance above.
fn bits_needed(rows: f64) -> u32 {
    (rows * rows / (2.0 * MAX_EXPECTED_COLLISIONS))
        .log2()
        .ceil() as u32
}

/// The message for a run that needs the key and has none (`clone` refuses; `plan` and
/// `validate`, which mask nothing, only warn).
pub fn missing_key_message(for_clone: bool) -> String {
    if for_clone {
        "the config uses keyed strategies, but PRIVACI_MASK_KEY is not set; set it to a secret of 16 bytes or more (the same secret gives the same masked values in every run)".into()
    } else {
        "the config uses keyed strategies: `privaci clone` will need PRIVACI_MASK_KEY (a secret of 16 bytes or more); plan and validate mask nothing and run without it".into()
    }
}

/// Resolves `config` against `cat`. `key` is only used to check that strategies fit (a
/// fixed key stands in without one: the caller decides whether the key is required).
pub fn resolve(
    config: &MaskingConfig,
    file: &str,
    cat: &Catalog,
    key: Option<&MaskKey>,
) -> Result<Vec<ResolvedTable>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let err = |line: Option<usize>, place: String, message: String| ConfigError {
        file: file.to_string(),
        line,
        place: Some(place),
        message,
    };

    let check_key = MaskKey::new(b"key used only to check strategies").expect("a valid key");
    let check_key = key.unwrap_or(&check_key);

    // Rules per (table with its own rules, column): tables named in the config.
    let mut rules: HashMap<(QualifiedName, String), (StrategySpec, RuleSource, Option<usize>)> =
        HashMap::new();
    for t in &config.tables {
        let place = format!("table \"{}.{}\"", t.schema, t.table);
        let Some(table) = cat.table(&t.schema, &t.table) else {
            let message = match cat.excluded.get(&(t.schema.clone(), t.table.clone())) {
                Some(why) => format!("not cloned: {why}; remove its entry, or clone it"),
                None => "no such table in the source database".into(),
            };
            errors.push(err(Some(t.line), place, message));
            continue;
        };
        if let Some(parent) = &table.parent {
            let root = cat.root_of(table);
            errors.push(err(
                Some(t.line),
                place,
                format!("is a partition of {parent}: partitions take their masking from their topmost partitioned table, so configure {root} instead"),
            ));
            continue;
        }
        for r in &t.columns {
            if table.columns.iter().any(|c| c.name == r.column) {
                rules.insert(
                    (table.name.clone(), r.column.clone()),
                    (r.strategy.clone(), RuleSource::Config, Some(r.line)),
                );
            } else {
                let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                errors.push(err(
                    Some(r.line),
                    format!("{place}, column \"{}\"", r.column),
                    format!("no such column (the table has: {})", names.join(", ")),
                ));
            }
        }
    }

    // The table whose rules apply to a table: itself, or its partitioned parent.
    let rule_table = |t: &Table| -> QualifiedName { cat.root_of(t) };

    // Foreign keys carry masking from the referenced key to the referencing columns, until
    // nothing changes; partners masked differently are refused.
    let fks: Vec<(&Table, &crate::catalog::Constraint)> = cat
        .tables
        .iter()
        .filter(|t| t.parent.is_none())
        .flat_map(|t| {
            t.constraints
                .iter()
                .filter(|c| c.kind == ConstraintKind::ForeignKey && !c.inherited_from_parent)
                .map(move |c| (t, c))
        })
        .collect();
    let mut reported: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let mut changed = false;
        for (t, c) in &fks {
            let Some((referenced, ref_cols)) = &c.references else {
                continue;
            };
            let ref_table = cat
                .table(&referenced.schema, &referenced.name)
                .map(rule_table)
                .unwrap_or_else(|| referenced.clone());
            for (col, ref_col) in c.columns.iter().zip(ref_cols) {
                let theirs = rules
                    .get(&(ref_table.clone(), ref_col.clone()))
                    .map(|r| r.0.clone())
                    .unwrap_or(StrategySpec::Keep);
                let mine = rules.get(&(t.name.clone(), col.clone())).cloned();
                let place = format!("table \"{}\", column \"{col}\"", t.name);
                match (mine, &theirs) {
                    (None, StrategySpec::Keep) => {}
                    (None, s) => {
                        rules.insert(
                            (t.name.clone(), col.clone()),
                            (
                                s.clone(),
                                RuleSource::Propagated(format!("{ref_table}.{ref_col}")),
                                None,
                            ),
                        );
                        changed = true;
                    }
                    (Some((mine, _, line)), theirs)
                        if &mine != theirs && reported.insert(place.clone()) =>
                    {
                        errors.push(err(
                            line,
                            place,
                            format!(
                                "foreign key {} references {ref_table}.{ref_col}, which is masked with \"{}\", but this column is masked with \"{}\": the keys would no longer join; give both the same strategy, or leave this column out of the config to take {ref_table}.{ref_col}'s",
                                c.name,
                                theirs.name(),
                                mine.name()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        if !changed {
            break;
        }
    }

    // Looked up per table below: indexed once here, so validation stays linear in the
    // number of tables.
    let mut unique_indexes: HashMap<&QualifiedName, Vec<&crate::catalog::Index>> = HashMap::new();
    for i in cat
        .indexes
        .iter()
        .filter(|i| i.unique && i.constraint.is_none())
    {
        unique_indexes.entry(&i.table).or_default().push(i);
    }
    let mut children_rows: HashMap<&QualifiedName, i64> = HashMap::new();
    for t in &cat.tables {
        if let Some(p) = &t.parent {
            *children_rows.entry(p).or_default() += t.estimated_rows;
        }
    }
    let config_lines: HashMap<(&str, &str), usize> = config
        .tables
        .iter()
        .map(|t| ((t.schema.as_str(), t.table.as_str()), t.line))
        .collect();
    // A strategy's options are checked once per (strategy, column kind), not per table.
    let mut checked: HashMap<String, Result<(), String>> = HashMap::new();
    let mut out = Vec::new();
    for t in cat.data_tables().chain(
        cat.tables
            .iter()
            .filter(|t| t.is_partitioned() && t.parent.is_none()),
    ) {
        let owner = rule_table(t);
        let unique_columns: Vec<(&str, &str)> = cat
            .table(&owner.schema, &owner.name)
            .into_iter()
            .flat_map(|x| x.constraints.iter())
            .filter(|c| matches!(c.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique))
            .flat_map(|c| {
                c.columns
                    .iter()
                    .map(move |col| (col.as_str(), c.name.as_str()))
            })
            .chain(
                // A unique index reads its key columns and the columns of its expressions and
                // predicate (`UNIQUE (lower(name))`): masking any of them can make two rows
                // equal under it.
                unique_indexes
                    .get(&owner)
                    .into_iter()
                    .flatten()
                    .flat_map(|i| {
                        i.uses_columns
                            .iter()
                            .map(move |col| (col.as_str(), i.name.name.as_str()))
                    }),
            )
            .collect();
        let estimated_rows = if t.is_partitioned() {
            children_rows.get(&t.name).copied().unwrap_or(0)
        } else {
            t.estimated_rows
        } as f64;
        let mut columns = Vec::new();
        let mut unlisted = Vec::new();
        for col in &t.columns {
            // An inheriting table without a rule of its own for an inherited column takes its
            // parents' (their queries read its rows too).
            let inherited = || {
                let mut stack: Vec<&Table> = vec![t];
                let mut seen = 0;
                while let Some(x) = stack.pop() {
                    seen += 1;
                    if seen > cat.tables.len() {
                        break;
                    }
                    for p in x
                        .inherits
                        .iter()
                        .filter_map(|p| cat.table(&p.schema, &p.name))
                    {
                        if let Some(r) = rules.get(&(p.name.clone(), col.name.clone())) {
                            return Some((p.name.clone(), r));
                        }
                        stack.push(p);
                    }
                }
                None
            };
            let found = rules
                .get(&(owner.clone(), col.name.clone()))
                .map(|r| (owner.clone(), r))
                .or_else(inherited);
            let (strategy, source, line) = match found {
                Some((from, (s, src, line))) => {
                    let src = if from != t.name && *src == RuleSource::Config {
                        RuleSource::Parent(from)
                    } else {
                        src.clone()
                    };
                    (s.clone(), src, *line)
                }
                None => {
                    if col.generated.is_none() {
                        unlisted.push(col.name.clone());
                    }
                    (StrategySpec::Keep, RuleSource::Unlisted, None)
                }
            };
            let spec = column_spec(col);
            // `default` leaves the column out of the target's COPY: a NOT NULL column needs a
            // DEFAULT (its own, its domain's, or an identity) or every row is refused.
            if strategy == StrategySpec::Default
                && col.not_null
                && col.default.is_none()
                && col.identity.is_none()
                && col.generated.is_none()
                && !domain_default(cat, col.type_oid)
            {
                errors.push(err(
                    line,
                    format!("table \"{}\", column \"{}\"", t.name, col.name),
                    "strategy \"default\" leaves the column to the target's DEFAULT, but it is NOT NULL and has none: every row would be refused; use another strategy, or give the column a DEFAULT".into(),
                ));
            }
            // Checks are made once, on the table that owns the rules.
            if owner == t.name && !matches!(strategy, StrategySpec::Keep | StrategySpec::Default) {
                let place = format!("table \"{}\", column \"{}\"", t.name, col.name);
                if col.generated.is_some() {
                    errors.push(err(line, place.clone(), "is a generated column: the target computes it, so it is never copied or masked; remove it from the config".into()));
                } else {
                    match &spec {
                        // NULL needs no reading of the type: only a NOT NULL column refuses it.
                        None if strategy == StrategySpec::Null => {
                            if col.not_null {
                                errors.push(err(line, place.clone(), "strategy \"null\" on a NOT NULL column: every row would be rejected; use \"default\" (with a DEFAULT) or keep".into()));
                            }
                        }
                        None => errors.push(err(
                            line,
                            place.clone(),
                            format!(
                                "strategy \"{}\" cannot read type {}: use keep, null or default",
                                strategy.name(),
                                col.type_name
                            ),
                        )),
                        Some(spec) => {
                            let key = format!("{strategy:?}|{spec:?}");
                            let result = checked.entry(key).or_insert_with(|| {
                                build(&strategy, spec, Some(check_key)).map(|_| ())
                            });
                            if let Err(e) = result {
                                errors.push(err(line, place.clone(), e.clone()));
                            }
                        }
                    }
                    if let Some((_, constraint)) =
                        unique_columns.iter().find(|(c, _)| *c == col.name)
                    {
                        if let Some(problem) = uniqueness_problem(
                            &strategy,
                            col,
                            spec.as_ref(),
                            constraint,
                            estimated_rows.max(MIN_ROWS_FOR_COLLISIONS),
                        ) {
                            errors.push(err(line, place, problem));
                        }
                    }
                }
            }
            columns.push(ResolvedColumn {
                name: col.name.clone(),
                quoted: col.quoted.clone(),
                type_name: col.type_name.clone(),
                type_oid: col.type_oid,
                strategy,
                source,
                copied: col.generated.is_none(),
                spec,
            });
        }
        if owner == t.name && config.unlisted_columns == Unlisted::Fail && !unlisted.is_empty() {
            let line = config_lines
                .get(&(t.name.schema.as_str(), t.name.name.as_str()))
                .copied();
            errors.push(err(
                line,
                format!("table \"{}\"", t.name),
                format!("unlisted_columns = \"fail\", and these columns are not listed: {}; classify each one (\"keep\" if it holds no personal data)", unlisted.join(", ")),
            ));
        }
        let text_fallback: Vec<String> = t
            .columns
            .iter()
            .filter(|c| c.generated.is_none() && !c.binary_io)
            .map(|c| c.name.clone())
            .collect();
        if !text_fallback.is_empty() && owner == t.name {
            // In text format only text values can be masked (they are the same bytes there).
            for c in columns.iter().filter(|c| {
                c.copied
                    && !matches!(
                        c.strategy,
                        StrategySpec::Keep | StrategySpec::Default | StrategySpec::Null
                    )
            }) {
                if !c.spec.as_ref().is_some_and(|s| s.kind == TypeKind::Text) {
                    errors.push(err(
                        rules.get(&(owner.clone(), c.name.clone())).and_then(|r| r.2),
                        format!("table \"{}\", column \"{}\"", t.name, c.name),
                        format!(
                            "the table is copied in text format (column {} has a type without binary I/O), where only text columns can be masked; use keep, null or default for this {} column",
                            text_fallback.join(", "),
                            c.type_name
                        ),
                    ));
                }
            }
        }
        out.push(ResolvedTable {
            table: t.name.clone(),
            parent: t.parent.clone(),
            partitioned: t.is_partitioned(),
            text_fallback,
            columns,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by(|a, b| a.line.cmp(&b.line).then(a.place.cmp(&b.place)));
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_bits_follow_the_length_and_the_column() {
        let mut spec = ColumnSpec::new("c", TypeKind::Text);
        assert_eq!(hash_bits(None, &HashEncoding::Hex, &spec), (256, 4));
        assert_eq!(hash_bits(Some(8), &HashEncoding::Hex, &spec), (32, 4));
        assert_eq!(hash_bits(None, &HashEncoding::Base64, &spec), (258, 6));
        spec.max_chars = Some(6);
        assert_eq!(hash_bits(None, &HashEncoding::Hex, &spec), (24, 4));
        let bytea = ColumnSpec::new("b", TypeKind::Bytea);
        assert_eq!(hash_bits(Some(4), &HashEncoding::Hex, &bytea), (32, 8));
        // 20,000 rows on 24 bits collide; 50,000 rows need 41 bits.
        assert!(bits_needed(20_000.0) > 24);
        assert_eq!(bits_needed(50_000.0), 41);
    }
}
