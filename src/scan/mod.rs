//! `privaci scan`: reads the catalog and a bounded sample of each table (read-only, one
//! table at a time, in one snapshot), classifies every column by its name and its values,
//! and writes a strict masking config: every column listed, `keep` for the others, each
//! personal one with its evidence (counts, never a value). The config is checked against
//! the catalog before it is written; where a strategy does not fit a column (its type, its
//! length, a key) the next choice is taken.

pub mod choose;
pub mod classify;
pub mod detect;
pub mod lexicon;
pub mod names;

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::{self, Catalog, Column, ConstraintKind, Filter, QualifiedName, Table};
use crate::config::resolve::resolve;
use crate::config::MaskingConfig;
use crate::conn::{connect, Connection};
use crate::conninfo::Config;
use crate::error::{Error, ErrorKind};
use crate::mask::StrategySpec;
use crate::types::TypeKind;
use classify::{Category, Class};

/// The kinds of personal data the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    Phone,
    NationalId,
    PaymentCard,
    Iban,
    IpAddress,
    BirthDate,
    FirstName,
    LastName,
    FullName,
    StreetAddress,
    PostalCode,
    City,
    Secret,
    FreeText,
    Json,
    Image,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Email,
        Kind::Phone,
        Kind::NationalId,
        Kind::PaymentCard,
        Kind::Iban,
        Kind::IpAddress,
        Kind::BirthDate,
        Kind::FirstName,
        Kind::LastName,
        Kind::FullName,
        Kind::StreetAddress,
        Kind::PostalCode,
        Kind::City,
        Kind::Secret,
        Kind::FreeText,
        Kind::Json,
        Kind::Image,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::NationalId => "national_id",
            Kind::PaymentCard => "payment_card",
            Kind::Iban => "iban",
            Kind::IpAddress => "ip_address",
            Kind::BirthDate => "birth_date",
            Kind::FirstName => "first_name",
            Kind::LastName => "last_name",
            Kind::FullName => "full_name",
            Kind::StreetAddress => "street_address",
            Kind::PostalCode => "postal_code",
            Kind::City => "city",
            Kind::Secret => "secret",
            Kind::FreeText => "free_text",
            Kind::Json => "json",
            Kind::Image => "image",
        }
    }

    /// In words, plural.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Email => "e-mail addresses",
            Kind::Phone => "phone numbers",
            Kind::NationalId => "national identifiers (valid check digits or format)",
            Kind::PaymentCard => "payment card numbers (Luhn-valid)",
            Kind::Iban => "IBANs (mod 97 valid)",
            Kind::IpAddress => "IP addresses",
            Kind::BirthDate => "dates of birth",
            Kind::FirstName => "first names",
            Kind::LastName => "surnames",
            Kind::FullName => "people's names",
            Kind::StreetAddress => "street addresses",
            Kind::PostalCode => "postal codes",
            Kind::City => "cities",
            Kind::Secret => "secrets (passwords, tokens, keys)",
            Kind::FreeText => "free text with personal data",
            Kind::Json => "JSON with personal keys",
            Kind::Image => "images",
        }
    }

    /// Whether a string inside JSON can be of this kind.
    pub fn fits_json(self) -> bool {
        !matches!(self, Kind::Json | Kind::Image)
    }
}

pub struct Options {
    pub source: Config,
    pub filter: Filter,
    /// Rows sampled per table.
    pub sample: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub column: String,
    pub r#type: String,
    /// The personal-data kind found, if any.
    pub kind: Option<Kind>,
    /// The strategy written to the config.
    pub strategy: String,
    pub evidence: String,
    pub sampled: usize,
    pub matched: usize,
    /// JSON paths found personal (json columns).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub json_paths: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub estimated_rows: i64,
    pub sampled_rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub columns: Vec<ColumnReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tables: Vec<TableReport>,
    /// Columns per kind found.
    pub kinds: std::collections::BTreeMap<&'static str, usize>,
    pub columns: usize,
    pub personal_columns: usize,
    /// Personal columns no strategy could mask (kept, and flagged for review).
    pub unmasked_personal: Vec<String>,
    pub seconds: f64,
    #[serde(skip)]
    pub config: String,
}

/// How a column is read for the sample: an expression and its category.
fn sample_expr(col: &Column) -> (Category, String) {
    let q = &col.quoted;
    let kind = crate::config::resolve::column_spec(col).map(|s| s.kind);
    let cat = match (&kind, col.is_enum) {
        (_, true) => Category::Never,
        (Some(TypeKind::Text), _) => Category::Text,
        (Some(TypeKind::Array(e)), _) if **e == TypeKind::Text => Category::TextArray,
        (Some(TypeKind::Int2 | TypeKind::Int4 | TypeKind::Int8), _) => Category::Integer,
        (Some(TypeKind::Numeric), _) => Category::Numeric,
        (Some(TypeKind::Date | TypeKind::Timestamp | TypeKind::TimestampTz), _) => Category::Date,
        (Some(TypeKind::Inet), _) if col.base_type_name == "inet" => Category::Inet,
        (Some(TypeKind::Json | TypeKind::Jsonb), _) => Category::Json,
        (Some(TypeKind::Bytea), _) => Category::Bytea,
        (Some(_), _) => Category::Never,
        (None, _) => Category::Other,
    };
    let expr = match cat {
        Category::Text | Category::Other => format!("left({q}::text, 2000)"),
        Category::TextArray => format!("left(array_to_string({q}, E'\\x1f'), 4000)"),
        Category::Integer | Category::Numeric | Category::Inet => format!("{q}::text"),
        Category::Date => format!("to_char({q}, 'YYYY-MM-DD')"),
        Category::Json => format!("CASE WHEN octet_length({q}::text) <= 65536 THEN {q}::text END"),
        Category::Bytea => format!("encode(substring({q} from 1 for 16), 'hex')"),
        Category::Never => "NULL".into(),
    };
    (cat, expr)
}

/// Reads up to `n` rows of `t` (its partitions too): a block sample spread over a big table,
/// the first rows of a small one.
async fn sample(
    conn: &mut Connection,
    t: &Table,
    rows: i64,
    exprs: &[String],
    n: usize,
) -> Result<Vec<Vec<Option<String>>>, Error> {
    if exprs.is_empty() {
        return Ok(Vec::new());
    }
    let from = if t.is_partitioned() {
        t.name.quoted.clone()
    } else {
        format!("ONLY {}", t.name.quoted)
    };
    let select = |sampling: &str| {
        format!(
            "SELECT {} FROM {from}{sampling} LIMIT {n}",
            exprs.join(", ")
        )
    };
    // Blocks are sampled for three times the rows wanted (rows are not spread evenly).
    if rows > (n as i64) * 10 {
        let pct = ((n as f64 * 3.0) / rows as f64 * 100.0).clamp(0.0001, 100.0);
        let got = read_rows(conn, &select(&format!(" TABLESAMPLE SYSTEM ({pct:.6})"))).await?;
        if got.len() * 4 >= n {
            return Ok(got);
        }
    }
    read_rows(conn, &select("")).await
}

/// A query's rows as text (bytes that are not UTF-8 replaced, not refused). It runs under
/// a savepoint, in the same message (one round trip per table): after an error the caller
/// rolls back to it and the transaction goes on.
async fn read_rows(conn: &mut Connection, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
    let results = conn
        .simple_query(&format!(
            "SAVEPOINT privaci_scan; {sql}; RELEASE SAVEPOINT privaci_scan"
        ))
        .await?;
    Ok(results
        .iter()
        .find(|r| !r.columns.is_empty())
        .map(|r| {
            r.rows
                .iter()
                .map(|row| {
                    row.fields()
                        .map(|f| f.map(|b| String::from_utf8_lossy(b).into_owned()))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Columns that are part of a key (primary, unique, foreign) on their table's rule table.
fn key_columns(cat: &Catalog) -> std::collections::HashSet<(QualifiedName, String)> {
    let mut out = std::collections::HashSet::new();
    for t in &cat.tables {
        let root = cat.root_of(t);
        for c in &t.constraints {
            if matches!(
                c.kind,
                ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::ForeignKey
            ) {
                for col in &c.columns {
                    out.insert((root.clone(), col.clone()));
                }
            }
        }
    }
    for i in cat.indexes.iter().filter(|i| i.unique) {
        if let Some(t) = cat.table(&i.table.schema, &i.table.name) {
            for col in &i.uses_columns {
                out.insert((cat.root_of(t), col.clone()));
            }
        }
    }
    out
}

/// One column's place in the config, while strategies are settled.
struct Slot {
    table: usize,
    column: String,
    category: Category,
    class: Class,
    group: usize,
}

/// Columns linked by foreign keys share one strategy (so keys keep joining).
struct Group {
    kind: Option<Kind>,
    choices: Vec<StrategySpec>,
    at: usize,
}

pub async fn run(opts: Options) -> Result<Report, Error> {
    let started = std::time::Instant::now();
    let mut conn = connect(&opts.source)
        .await
        .map_err(|e| e.context("source"))?;
    conn.execute(
        "SET DateStyle = ISO, YMD; SET bytea_output = hex; SET extra_float_digits = 3; \
         SET jit = off; SET statement_timeout = '120s'; SET lock_timeout = '10s'",
    )
    .await?;
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let cat = catalog::load(&mut conn, &opts.filter)
        .await
        .map_err(|e| e.context("catalog"))?;
    let keys = key_columns(&cat);

    // Tables with rules of their own: all but partitions (which take their root's).
    let tables: Vec<&Table> = cat.tables.iter().filter(|t| t.parent.is_none()).collect();
    let mut partition_rows: HashMap<QualifiedName, i64> = HashMap::new();
    for t in cat.tables.iter().filter(|t| t.parent.is_some()) {
        *partition_rows.entry(cat.root_of(t)).or_default() += t.estimated_rows;
    }
    let mut slots: Vec<Slot> = Vec::new();
    let mut reports: Vec<TableReport> = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        let rows = if t.is_partitioned() {
            partition_rows.get(&t.name).copied().unwrap_or(0)
        } else {
            t.estimated_rows
        };
        let cols: Vec<&Column> = t.columns.iter().filter(|c| c.generated.is_none()).collect();
        let reads: Vec<(Category, String)> = cols.iter().map(|c| sample_expr(c)).collect();
        let wanted: Vec<usize> = (0..cols.len())
            .filter(|&i| reads[i].0 != Category::Never)
            .collect();
        let exprs: Vec<String> = wanted.iter().map(|&i| reads[i].1.clone()).collect();
        let mut note = None;
        let sampled: Vec<Vec<Option<String>>> = if !t.readable {
            note = Some("the role may not read it: classified by column names only".to_string());
            Vec::new()
        } else {
            match sample(&mut conn, t, rows, &exprs, opts.sample).await {
                Ok(r) => r,
                Err(e) if e.code().is_some() => {
                    conn.execute("ROLLBACK TO SAVEPOINT privaci_scan").await?;
                    note = Some(format!(
                        "could not be sampled ({}): classified by column names only",
                        e.message()
                    ));
                    Vec::new()
                }
                Err(e) => return Err(e.context(format!("sampling {}", t.name))),
            }
        };
        let values_of = |i: usize| -> Vec<Option<String>> {
            match wanted.iter().position(|&w| w == i) {
                Some(p) => sampled
                    .iter()
                    .map(|r| r.get(p).cloned().flatten())
                    .collect(),
                None => Vec::new(),
            }
        };
        // Dates are judged once the table's other columns say whether it is about people.
        let mut classes: Vec<Class> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if reads[i].0 == Category::Date {
                    Class::default()
                } else {
                    classify::column(&c.name, reads[i].0, &values_of(i), false)
                }
            })
            .collect();
        let people = classes.iter().any(|c| {
            matches!(
                c.kind,
                Some(
                    Kind::FullName
                        | Kind::FirstName
                        | Kind::LastName
                        | Kind::Email
                        | Kind::Phone
                        | Kind::NationalId
                )
            )
        });
        for (i, c) in cols.iter().enumerate() {
            if reads[i].0 == Category::Date {
                classes[i] = classify::column(&c.name, Category::Date, &values_of(i), people);
            }
        }
        for (i, c) in cols.iter().enumerate() {
            slots.push(Slot {
                table: ti,
                column: c.name.clone(),
                category: reads[i].0,
                class: std::mem::take(&mut classes[i]),
                group: slots.len(),
            });
        }
        reports.push(TableReport {
            table: t.name.to_string(),
            estimated_rows: rows,
            sampled_rows: sampled.len(),
            note,
            columns: Vec::new(),
        });
    }
    let _ = conn.execute("COMMIT").await;
    let _ = conn.close().await;

    // Foreign keys: both sides in one group (union-find over slots).
    let index: HashMap<(QualifiedName, String), usize> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| ((tables[s.table].name.clone(), s.column.clone()), i))
        .collect();
    let mut parent: Vec<usize> = (0..slots.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for t in &cat.tables {
        for c in t
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::ForeignKey && !c.inherited_from_parent)
        {
            let Some((rt, rcols)) = &c.references else {
                continue;
            };
            let child = cat.root_of(t);
            let referenced = cat
                .table(&rt.schema, &rt.name)
                .map(|x| cat.root_of(x))
                .unwrap_or_else(|| rt.clone());
            for (a, b) in c.columns.iter().zip(rcols) {
                if let (Some(&x), Some(&y)) = (
                    index.get(&(child.clone(), a.clone())),
                    index.get(&(referenced.clone(), b.clone())),
                ) {
                    let (rx, ry) = (find(&mut parent, x), find(&mut parent, y));
                    // The referenced side leads.
                    parent[rx] = ry;
                }
            }
        }
    }
    for (i, slot) in slots.iter_mut().enumerate() {
        slot.group = find(&mut parent, i);
    }
    let mut groups: HashMap<usize, Group> = HashMap::new();
    for (i, s) in slots.iter().enumerate() {
        let g = groups.entry(s.group).or_insert(Group {
            kind: None,
            choices: Vec::new(),
            at: 0,
        });
        // The group's kind: its leader's, else the first member's that has one.
        if s.class.kind.is_some() && (g.kind.is_none() || i == s.group) {
            g.kind = s.class.kind;
        }
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, s) in slots.iter().enumerate() {
        members.entry(s.group).or_default().push(i);
    }
    for (&leader, g) in groups.iter_mut() {
        let Some(kind) = g.kind else {
            continue;
        };
        let lead = &slots[leader];
        let group = &members[&leader];
        let key = group.len() > 1
            || keys.contains(&(tables[lead.table].name.clone(), lead.column.clone()));
        let json = group
            .iter()
            .map(|&i| &slots[i])
            .find(|s| !s.class.json.is_empty() || !s.class.json_unaddressable.is_empty())
            .filter(|s| s.class.json_unaddressable.is_empty())
            .map(|s| s.class.json.clone())
            .unwrap_or_default();
        g.choices = choose::candidates(kind, lead.category, key, &json);
    }

    // Write, check against the catalog, move columns whose choice does not fit to the next.
    let mut config = String::new();
    for _round in 0..8 {
        let (text, lines) = render(&tables, &slots, &groups, opts.sample);
        let parsed = MaskingConfig::parse(&text, "scan").map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("the config scan wrote does not parse: {e}"),
            )
        })?;
        match resolve(&parsed, "scan", &cat, None) {
            Ok(_) => {
                config = text;
                break;
            }
            Err(errors) => {
                let mut moved = false;
                for e in &errors {
                    let Some(&slot) = e.line.and_then(|l| lines.get(&l)) else {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("the config scan wrote does not fit the catalog: {e}"),
                        ));
                    };
                    let g = groups
                        .get_mut(&slots[slot].group)
                        .expect("every slot has a group");
                    if g.at + 1 < g.choices.len() {
                        g.at += 1;
                        moved = true;
                    } else if g.kind.is_some() {
                        // Nothing fits: keep it, and say so.
                        g.choices.clear();
                        moved = true;
                    }
                }
                if !moved {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "the config scan wrote does not fit the catalog: {}",
                            errors[0]
                        ),
                    ));
                }
            }
        }
    }
    if config.is_empty() {
        return Err(Error::new(
            ErrorKind::Protocol,
            "could not settle a strategy for every column",
        ));
    }

    let mut kinds = std::collections::BTreeMap::new();
    let mut unmasked = Vec::new();
    for s in &slots {
        let g = &groups[&s.group];
        let strategy = g.choices.get(g.at).cloned();
        let t = &tables[s.table];
        if let Some(kind) = s.class.kind {
            *kinds.entry(kind.label()).or_insert(0) += 1;
            if strategy.is_none() {
                unmasked.push(format!("{}.{}", t.name, s.column));
            }
        }
        let column = t.columns.iter().find(|c| c.name == s.column);
        reports[s.table].columns.push(ColumnReport {
            column: s.column.clone(),
            r#type: column.map(|c| c.type_name.clone()).unwrap_or_default(),
            kind: s.class.kind,
            strategy: strategy
                .as_ref()
                .map(|x| x.name().to_string())
                .unwrap_or_else(|| "keep".into()),
            evidence: evidence(s, g),
            sampled: s.class.sampled,
            matched: s.class.matched,
            json_paths: s
                .class
                .json
                .iter()
                .map(|p| format!("$..{} ({})", p.key, p.kind.label()))
                .collect(),
        });
    }
    Ok(Report {
        columns: slots.len(),
        personal_columns: slots.iter().filter(|s| s.class.kind.is_some()).count(),
        tables: reports,
        kinds,
        unmasked_personal: unmasked,
        seconds: started.elapsed().as_secs_f64(),
        config,
    })
}

/// The comment above a column: its kind and evidence, or why it is masked like another.
fn evidence(s: &Slot, g: &Group) -> String {
    match (s.class.kind, g.kind) {
        (Some(k), _) if g.choices.is_empty() => format!(
            "REVIEW: {} ({}), but no strategy fits this column's type: kept",
            k.label(),
            s.class.evidence
        ),
        (Some(k), _) => format!("{}: {}", k.label(), s.class.evidence),
        (None, Some(k)) => format!(
            "{}: joined by a foreign key to a column found personal, masked the same way",
            k.label()
        ),
        (None, None) => String::new(),
    }
}

/// The config text, and which slot each column line holds.
fn render(
    tables: &[&Table],
    slots: &[Slot],
    groups: &HashMap<usize, Group>,
    sample: usize,
) -> (String, HashMap<usize, usize>) {
    let mut out = String::new();
    out.push_str(&format!(
        "# Masking config written by `privaci scan` (up to {sample} sampled rows per table; no value was\n\
         # kept, printed or written). Every column is listed and unlisted columns are refused, so a\n\
         # column added later stops the clone until it is classified. Review the personal columns\n\
         # (the comment above each gives the evidence) and the kept ones before the first clone.\n\n\
         [masking]\nunlisted_columns = \"fail\"\n"
    ));
    let mut lines = HashMap::new();
    let mut line = out.lines().count() + 1;
    let mut next = 0;
    for (ti, t) in tables.iter().enumerate() {
        let header = format!(
            "\n[tables.{}.columns]\n",
            choose::toml_string(&format!(
                "{}.{}",
                choose::sql_name(&t.name.schema),
                choose::sql_name(&t.name.name)
            ))
        );
        line += 2;
        out.push_str(&header);
        // Slots were made table by table: this table's are the run from `next`.
        while next < slots.len() && slots[next].table == ti {
            let (si, s) = (next, &slots[next]);
            next += 1;
            let g = &groups[&s.group];
            // A name with a line break must not end the comment.
            let ev = evidence(s, g).replace(|c: char| c.is_control(), " ");
            if !ev.is_empty() {
                out.push_str(&format!("# {ev}\n"));
                line += 1;
            }
            let strategy = g
                .choices
                .get(g.at)
                .map(choose::strategy_toml)
                .unwrap_or_else(|| "\"keep\"".into());
            out.push_str(&format!(
                "{} = {strategy}\n",
                choose::toml_key(&choose::sql_name(&s.column))
            ));
            lines.insert(line, si);
            line += 1;
        }
    }
    (out, lines)
}
