//! Introspection of a database through `pg_catalog`, with simple queries, into a model the
//! schema and engine layers use. Definitions come from the server's own deparsers
//! (`pg_get_*def`, `pg_get_expr`, `format_type`) and names from `quote_ident`, so what is
//! rebuilt elsewhere is what the server would write itself. Objects that belong to
//! extensions are left to `CREATE EXTENSION`.

mod deps;
mod objects;
mod privileges;
mod queries;

pub use privileges::Grant;

pub use objects::{LargeObject, ObjectKind, PlainObject, Publication};

pub use deps::{Dep, ObjRef};

pub use queries::quote_literal;

use crate::conn::Connection;
use crate::error::{Error, ErrorKind};

pub use queries::{filter_misses, load, lockable_tables, oid_map, type_oids, TypeOid};

/// A schema-qualified name, raw (for comparisons and messages) and quoted (for SQL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
    /// `"schema"."name"` as `quote_ident` writes each part.
    pub quoted: String,
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub name: String,
    pub quoted: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    pub name: String,
    pub schema: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeDef {
    Enum {
        labels: Vec<String>,
    },
    /// The base type as `format_type` writes it; checks as (quoted name, definition).
    Domain {
        base: String,
        not_null: bool,
        default: Option<String>,
        collation: Option<String>,
        checks: Vec<(String, String)>,
    },
    /// Attributes as (quoted name, type).
    Composite {
        attributes: Vec<(String, String)>,
    },
    /// The subtype and the other options, as `CREATE TYPE ... AS RANGE` takes them.
    Range {
        subtype: String,
        options: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserType {
    pub oid: u32,
    pub name: QualifiedName,
    pub def: TypeDef,
    /// User types this one is built on (OIDs), for ordering.
    pub depends_on: Vec<u32>,
    pub comment: Option<String>,
    /// `COMMENT ON COLUMN` statements for a composite type's attributes.
    pub attribute_comments: Vec<String>,
    /// `COMMENT ON CONSTRAINT ... ON DOMAIN` statements, run once every constraint exists.
    pub constraint_comments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub oid: u32,
    pub name: QualifiedName,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The column that owns it: (table, quoted column name).
    pub owned_by: Option<(QualifiedName, String)>,
    /// Created by an identity column, not by CREATE SEQUENCE.
    pub identity: bool,
    /// `last_value` and `is_called`, read from the sequence itself.
    pub last_value: Option<(i64, bool)>,
    pub unlogged: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub quoted: String,
    pub attnum: i16,
    /// As `format_type(atttypid, atttypmod)` writes it.
    pub type_name: String,
    pub type_oid: u32,
    /// The type a strategy sees: a domain's base type (with the column's modifier), the
    /// type itself otherwise.
    pub base_type_name: String,
    /// An enum (its values travel as their labels) or an array of one.
    pub is_enum: bool,
    /// The type (and its base or element type) has binary send/receive functions that read
    /// back what they write; without them the table is copied in text format. `tsquery`
    /// counts as without: its receive function refuses an empty query its send function
    /// writes.
    pub binary_io: bool,
    /// `COLLATE "x"` when it differs from the type's default.
    pub collation: Option<String>,
    /// Its collation compares strings byte by byte once normalized (false for a
    /// nondeterministic ICU collation, under which `'A' = 'a'` can hold).
    pub deterministic: bool,
    pub not_null: bool,
    pub default: Option<String>,
    /// `a` (ALWAYS) or `d` (BY DEFAULT) for identity columns.
    pub identity: Option<char>,
    /// The expression of a STORED generated column.
    pub generated: Option<String>,
    /// Declared in this table rather than inherited from a partitioned parent.
    pub is_local: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    Check,
    ForeignKey,
    Exclusion,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub name: String,
    pub quoted: String,
    pub kind: ConstraintKind,
    /// As `pg_get_constraintdef` writes it.
    pub definition: String,
    /// Declared on this table (not only inherited).
    pub is_local: bool,
    /// Cloned from a constraint of the partitioned parent.
    pub inherited_from_parent: bool,
    /// The index behind a primary key, unique or exclusion constraint.
    pub index: Option<QualifiedName>,
    pub columns: Vec<String>,
    /// Foreign keys: the referenced table and columns.
    pub references: Option<(QualifiedName, Vec<String>)>,
    pub validated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStrategy {
    Range,
    List,
    Hash,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub oid: u32,
    pub name: QualifiedName,
    pub unlogged: bool,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
    /// For a partitioned table: its strategy and `PARTITION BY` clause.
    pub partitioning: Option<(PartitionStrategy, String)>,
    /// For a partition: its parent and its bound (`FOR VALUES ...` or `DEFAULT`), verbatim.
    pub parent: Option<QualifiedName>,
    pub bound: Option<String>,
    /// Table inheritance (`INHERITS`, not partitioning): its parents, in declared order.
    pub inherits: Vec<QualifiedName>,
    /// A typed table (`OF type`): the composite type its columns come from.
    pub of_type: Option<String>,
    pub estimated_rows: i64,
    /// Table size including TOAST, without indexes.
    pub size_bytes: i64,
    /// Blocks in the main fork (for splitting by ctid ranges).
    pub pages: i64,
    pub comment: Option<String>,
    /// Whether the connected role may read it.
    pub readable: bool,
    /// Row-level security applies to the connected role (enabled, and the role is neither
    /// superuser, BYPASSRLS, nor the owner of a table without FORCE ROW LEVEL SECURITY): with
    /// `row_security = off` reading it is an error, with it on rows would vanish silently.
    pub row_security: bool,
}

impl Table {
    pub fn is_partitioned(&self) -> bool {
        self.partitioning.is_some()
    }

    pub fn primary_key(&self) -> Option<&Constraint> {
        self.constraints
            .iter()
            .find(|c| c.kind == ConstraintKind::PrimaryKey)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: QualifiedName,
    pub table: QualifiedName,
    /// As `pg_get_indexdef` writes it (`ON ONLY` for a partitioned table's index).
    pub definition: String,
    /// Backs a primary key, unique or exclusion constraint (created with the constraint).
    pub constraint: Option<String>,
    /// The partitioned index this one is attached to.
    pub parent: Option<QualifiedName>,
    pub unique: bool,
    pub columns: Vec<String>,
    /// Every column the index reads: its key columns, and those its expressions and its
    /// predicate use (from `pg_depend`).
    pub uses_columns: Vec<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub name: QualifiedName,
    pub definition: String,
    pub materialized: bool,
    pub populated: bool,
    pub comment: Option<String>,
    pub oid: u32,
    /// `security_barrier`, `security_invoker` (views) or storage parameters (materialized
    /// views), as `WITH (...)` takes them.
    pub options: Option<String>,
    /// `CASCADED` or `LOCAL` for a view `WITH ... CHECK OPTION`.
    pub check_option: Option<String>,
    /// Statements run after the view: column defaults and column comments.
    pub column_settings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub oid: u32,
    pub name: QualifiedName,
    /// As `pg_get_function_identity_arguments` writes them.
    pub arguments: String,
    /// As `pg_get_functiondef` writes it (a `CREATE AGGREGATE` for an aggregate).
    pub definition: String,
    pub comment: Option<String>,
    /// An aggregate (`COMMENT ON AGGREGATE`, and `*` for no arguments).
    pub aggregate: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub table: QualifiedName,
    pub name: String,
    pub definition: String,
}

/// When a table's setting is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingStage {
    /// With the table, before rows (storage parameters, column storage and statistics).
    WithTable,
    /// With the table's indexes (replica identity using an index, `CLUSTER ON`).
    WithIndexes,
    /// Once the rows are in (row-level security and its policies, rules): they would act on
    /// the load itself.
    AfterRows,
}

/// A per-table setting or table-bound object pg_dump would write, as SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSetting {
    pub table: QualifiedName,
    pub stage: SettingStage,
    /// For messages: `policy owner_only on public.notes`.
    pub object: String,
    pub sql: String,
    /// What takes it off again before `--resume` reloads the table (AfterRows only).
    pub undo: Option<String>,
}

/// Everything a clone reads from a database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    pub server_version_num: u32,
    pub schemas: Vec<Schema>,
    pub extensions: Vec<Extension>,
    pub types: Vec<UserType>,
    pub sequences: Vec<Sequence>,
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    pub views: Vec<View>,
    pub functions: Vec<Function>,
    pub triggers: Vec<Trigger>,
    pub settings: Vec<TableSetting>,
    /// Collations, text search objects, casts, conversions, operators and their classes.
    pub objects: Vec<PlainObject>,
    pub publications: Vec<Publication>,
    pub large_objects: Vec<LargeObject>,
    /// Grants, revokes and default privileges (applied with `--privileges`).
    pub grants: Vec<Grant>,
    /// What must exist before what (from `pg_depend`), between user objects.
    pub deps: Vec<Dep>,
    /// `tables` by name, built on first use: lookups stay O(1) with 50,000 tables.
    pub table_index: TableIndex,
    /// Tables the filter left out, with the option that did (for messages about them).
    pub excluded: std::collections::HashMap<(String, String), &'static str>,
    /// Objects that cannot be cloned, for pre-flight to list (kind, name, why).
    pub unsupported: Vec<(String, String, String)>,
}

/// An index of a catalog's tables by (schema, name), built lazily. It is checked on each
/// use (an entry must still name the table it points at), so a stale index is never wrong,
/// only slower; code that changes `tables` resets it.
#[derive(Debug, Default)]
pub struct TableIndex(
    std::sync::OnceLock<
        std::collections::HashMap<String, std::collections::HashMap<String, usize>>,
    >,
);

impl Clone for TableIndex {
    fn clone(&self) -> Self {
        TableIndex::default()
    }
}

impl PartialEq for TableIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Catalog {
    /// Keeps the grants whose roles exist on the target (`roles`); returns, for each role
    /// that does not, how many grants name it.
    pub fn grants_for_roles(
        &mut self,
        roles: &std::collections::HashSet<String>,
    ) -> Vec<(String, usize)> {
        let mut missing: std::collections::BTreeMap<String, usize> = Default::default();
        self.grants.retain(|g| {
            let absent: Vec<&String> = [&g.grantee, &g.for_role]
                .into_iter()
                .flatten()
                .filter(|r| !roles.contains(*r))
                .collect();
            for r in &absent {
                *missing.entry((*r).clone()).or_default() += 1;
            }
            absent.is_empty()
        });
        missing.into_iter().collect()
    }

    /// Leaves out (and lists as unsupported) the extensions this target cannot have: not
    /// available on its server, or not installed and only creatable by a superuser (not
    /// trusted) when the target role is not one. `available` maps each extension the target
    /// server offers to (installed in the database, creatable by a non-superuser).
    pub fn without_unavailable_extensions(
        &mut self,
        available: &std::collections::HashMap<String, (bool, bool)>,
        superuser: bool,
    ) {
        let mut keep = Vec::new();
        for e in std::mem::take(&mut self.extensions) {
            let why = match available.get(&e.name) {
                None => Some(format!(
                    "not available on the target server (the source has version {}): install its package there",
                    e.version
                )),
                Some((false, false)) if !superuser => Some(
                    "only a superuser can create it (it is not a trusted extension), and the target role is not one: create it on the target first".to_string(),
                ),
                _ => None,
            };
            match why {
                Some(why) => self.unsupported.push(("extension".into(), e.name, why)),
                None => keep.push(e),
            }
        }
        self.extensions = keep;
    }

    /// Leaves out (and lists as unsupported) what only a superuser can create, for a target
    /// role that is not one.
    pub fn without_superuser_objects(&mut self) {
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut self.objects)
            .into_iter()
            .partition(|o| o.superuser_only.is_none());
        self.objects = keep;
        for o in drop {
            let why = o.superuser_only.unwrap_or_default();
            self.unsupported.push((
                o.kind.label().into(),
                o.name,
                format!("{why}, and the target role is not one"),
            ));
        }
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        // By schema, then name: looked up with the borrowed names, no allocation.
        let index = self.table_index.0.get_or_init(|| {
            let mut by_schema: std::collections::HashMap<
                String,
                std::collections::HashMap<String, usize>,
            > = Default::default();
            for (i, t) in self.tables.iter().enumerate() {
                by_schema
                    .entry(t.name.schema.clone())
                    .or_default()
                    .insert(t.name.name.clone(), i);
            }
            by_schema
        });
        let found = index
            .get(schema)
            .and_then(|names| names.get(name))
            .and_then(|&i| self.tables.get(i))
            .filter(|t| t.name.schema == schema && t.name.name == name);
        found.or_else(|| {
            self.tables
                .iter()
                .find(|t| t.name.schema == schema && t.name.name == name)
        })
    }

    /// The partitions of a partitioned table, in bound order as the catalog lists them.
    pub fn children<'a>(
        &'a self,
        parent: &'a QualifiedName,
    ) -> impl Iterator<Item = &'a Table> + 'a {
        self.tables
            .iter()
            .filter(move |t| t.parent.as_ref() == Some(parent))
    }

    /// The partitioned tables above `t`, nearest first (several with multi-level
    /// partitioning).
    pub fn ancestors<'a>(&'a self, t: &'a Table) -> Vec<&'a Table> {
        let mut out = Vec::new();
        let mut at = t;
        while let Some(p) = at
            .parent
            .as_ref()
            .and_then(|p| self.table(&p.schema, &p.name))
        {
            if out.iter().any(|x: &&Table| x.name == p.name) {
                break;
            }
            out.push(p);
            at = p;
        }
        out
    }

    /// The table whose masking rules apply to `t`: its topmost partitioned ancestor, or
    /// itself.
    pub fn root_of(&self, t: &Table) -> QualifiedName {
        self.ancestors(t)
            .last()
            .map(|r| r.name.clone())
            .unwrap_or_else(|| t.name.clone())
    }

    /// Tables whose rows are copied: ordinary tables and partitions (not partitioned parents).
    pub fn data_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| !t.is_partitioned())
    }
}

/// Which schemas and tables to take. Names are as the catalog stores them (the command line
/// folds them with SQL's rules before they get here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these schemas (empty: all but the system's).
    pub include_schemas: Vec<String>,
    pub exclude_schemas: Vec<String>,
    /// (schema, table) to leave out.
    pub exclude_tables: Vec<(String, String)>,
}

impl Filter {
    pub fn takes_schema(&self, schema: &str) -> bool {
        (self.include_schemas.is_empty() || self.include_schemas.iter().any(|s| s == schema))
            && !self.exclude_schemas.iter().any(|s| s == schema)
    }

    pub fn takes_table(&self, schema: &str, table: &str) -> bool {
        self.takes_schema(schema)
            && !self
                .exclude_tables
                .iter()
                .any(|(s, t)| s == schema && t == table)
    }
}

/// An identifier quoted for SQL (always quoted: correct for every name, whatever its case).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn catalog_error(what: &str, e: Error) -> Error {
    Error::new(
        e.kind(),
        format!("reading the catalog ({what}) failed: {e}"),
    )
}

pub(crate) fn bad_row(what: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("unexpected row shape while reading {what} from the catalog"),
    )
}

/// Reads the server version as an integer (150018 for 15.18).
pub async fn server_version_num(conn: &mut Connection) -> Result<u32, Error> {
    let rows = conn.query_text("SHOW server_version_num").await?;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad_row("server_version_num"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn extensions_the_target_cannot_have_are_listed_not_created() {
        let ext = |name: &str| Extension {
            name: name.into(),
            schema: "public".into(),
            version: "1.0".into(),
        };
        let mut cat = Catalog {
            extensions: vec![
                ext("citext"),
                ext("postgis"),
                ext("pg_stat_statements"),
                ext("hstore"),
            ],
            ..Catalog::default()
        };
        let available: HashMap<String, (bool, bool)> = [
            ("citext".to_string(), (false, true)),
            ("pg_stat_statements".to_string(), (false, false)),
            ("hstore".to_string(), (true, false)),
        ]
        .into_iter()
        .collect();
        let mut as_superuser = cat.clone();
        as_superuser.without_unavailable_extensions(&available, true);
        let names = |c: &Catalog| {
            c.extensions
                .iter()
                .map(|e| e.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&as_superuser),
            ["citext", "pg_stat_statements", "hstore"]
        );
        assert_eq!(as_superuser.unsupported.len(), 1);
        assert!(as_superuser.unsupported[0]
            .2
            .contains("not available on the target server (the source has version 1.0)"));

        cat.without_unavailable_extensions(&available, false);
        // Installed already (hstore) or trusted (citext): kept.
        assert_eq!(names(&cat), ["citext", "hstore"]);
        let listed: Vec<&str> = cat.unsupported.iter().map(|u| u.1.as_str()).collect();
        assert_eq!(listed, ["postgis", "pg_stat_statements"]);
    }
}
