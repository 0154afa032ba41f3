//! Pre-flight: what must be true before anything is written to the target. Each refusal says
//! what is wrong, on which object, and what to do; the run stops with exit code 2.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::conn::Connection;
use crate::error::Error;

/// The oldest server privaci supports (PostgreSQL 12: generated columns, `pg_get_partkeydef`
/// as used here, and the catalogs the queries read).
pub const MIN_SERVER_VERSION: u32 = 120000;

/// How the target schema is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaMode {
    /// privaci creates it (the target must not already have the tables).
    Create,
    /// The user's migrations made it: the tables must be there.
    Existing,
}

/// Up to five names, then "...".
fn first_few(names: &[&str]) -> String {
    let mut s = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(", ...");
    }
    s
}

fn version_text(num: u32) -> String {
    format!("{}.{}", num / 10000, num % 10000)
}

/// Objects privaci cannot create on the target, refused (unless the user said to skip them)
/// when privaci creates the schema: nothing is left out silently.
pub fn check_unsupported(cat: &Catalog, mode: SchemaMode, skip: bool) -> Vec<String> {
    if skip || mode == SchemaMode::Existing || cat.unsupported.is_empty() {
        return Vec::new();
    }
    let list: Vec<String> = cat
        .unsupported
        .iter()
        .map(|(kind, name, why)| format!("{kind} {name} ({why})"))
        .collect();
    vec![format!(
        "{} object(s) cannot be created by privaci; create them on the target yourself (then --schema existing), exclude their schema, or give --skip-unsupported to clone without them (each is then listed in the report and the audit log):\n      {}",
        list.len(),
        list.join("\n      ")
    )]
}

/// Checks on the source alone.
pub fn check_source(cat: &Catalog) -> Vec<String> {
    let mut refusals = Vec::new();
    let unreadable: Vec<String> = cat
        .large_objects
        .iter()
        .filter(|lo| !lo.readable)
        .map(|lo| lo.oid.to_string())
        .collect();
    if !unreadable.is_empty() {
        let names: Vec<&str> = unreadable.iter().map(String::as_str).collect();
        refusals.push(format!(
            "the source role may not read {} large object(s) ({}): grant it SELECT on them (GRANT SELECT ON LARGE OBJECT ...), read as their owner, or give --no-large-objects",
            unreadable.len(),
            first_few(&names)
        ));
    }
    if cat.server_version_num < MIN_SERVER_VERSION {
        refusals.push(format!(
            "the source runs PostgreSQL {}, older than the oldest supported ({}); upgrade it or use pg_dump",
            version_text(cat.server_version_num),
            version_text(MIN_SERVER_VERSION)
        ));
    }
    let unreadable: Vec<String> = cat
        .tables
        .iter()
        .filter(|t| !t.readable && !t.is_partitioned())
        .map(|t| t.name.to_string())
        .collect();
    if !unreadable.is_empty() {
        refusals.push(format!(
            "the source role may not read {} table(s): {}; GRANT SELECT on them to the role privaci connects as, or exclude them",
            unreadable.len(),
            unreadable.join(", ")
        ));
    }
    let hidden: Vec<String> = cat
        .tables
        .iter()
        .filter(|t| t.row_security && t.readable && !t.is_partitioned())
        .map(|t| t.name.to_string())
        .collect();
    if !hidden.is_empty() {
        refusals.push(format!(
            "row-level security applies to the source role on {} table(s): {}; its policies would hide rows from the copy: grant the role BYPASSRLS (ALTER ROLE ... BYPASSRLS), connect as the tables' owner (when they do not FORCE ROW LEVEL SECURITY), or exclude them (--exclude-table)",
            hidden.len(),
            hidden.join(", ")
        ));
    }
    refusals
}

/// Moves to `cat.unsupported` what this target cannot have: objects only a superuser may
/// create when its role is not one, and (when privaci creates the schema) extensions its
/// server does not offer or its role may not create.
pub async fn fit_to_target(
    target: &mut Connection,
    cat: &mut Catalog,
    mode: SchemaMode,
) -> Result<(), Error> {
    let superuser = target_is_superuser(target).await?;
    if !superuser {
        cat.without_superuser_objects();
    }
    if mode == SchemaMode::Create {
        let available = target_extensions(target).await?;
        cat.without_unavailable_extensions(&available, superuser);
    }
    Ok(())
}

/// Whether the target role is a superuser (who alone may create operator classes, casts
/// without functions, ...).
async fn target_is_superuser(target: &mut Connection) -> Result<bool, Error> {
    let rows = target
        .query_text("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
        == Some("t"))
}

/// The roles that exist on the target (grants to others cannot be made there).
pub async fn target_roles(target: &mut Connection) -> Result<HashSet<String>, Error> {
    Ok(target
        .query_text("SELECT rolname FROM pg_catalog.pg_roles")
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// The extensions the target server offers: name → (installed in this database, some
/// version a non-superuser may create: trusted, or not needing a superuser).
async fn target_extensions(
    target: &mut Connection,
) -> Result<std::collections::HashMap<String, (bool, bool)>, Error> {
    let rows = target
        .query_text(
            "SELECT e.name, e.installed_version IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions v WHERE v.name = e.name AND (v.trusted OR NOT v.superuser))
             FROM pg_catalog.pg_available_extensions e",
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let name = r.first().cloned().flatten()?;
            let flag = |i: usize| r.get(i).cloned().flatten().as_deref() == Some("t");
            Some((name, (flag(1), flag(2))))
        })
        .collect())
}

/// Checks on the target, for a clone of `cat` into it.
pub async fn check_target(
    target: &mut Connection,
    cat: &Catalog,
    mode: SchemaMode,
    resume: bool,
) -> Result<Vec<String>, Error> {
    let mut refusals = Vec::new();
    let version = crate::catalog::server_version_num(target).await?;
    if version < MIN_SERVER_VERSION {
        refusals.push(format!(
            "the target runs PostgreSQL {}, older than the oldest supported ({})",
            version_text(version),
            version_text(MIN_SERVER_VERSION)
        ));
    }
    if version / 10000 < cat.server_version_num / 10000 {
        refusals.push(format!(
            "the target runs PostgreSQL {}, older than the source's {}: DDL from a newer server may not load; use a target at least as new as the source",
            version_text(version),
            version_text(cat.server_version_num)
        ));
    }
    let rows = target
        .query_text(
            "SELECT current_user, current_database(), has_database_privilege(current_database(), 'CREATE'),
                    to_regnamespace('_privaci') IS NOT NULL",
        )
        .await?;
    let row = rows.first().cloned().unwrap_or_default();
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let (user, db, can_create, has_state) = (text(0), text(1), text(2) == "t", text(3) == "t");
    if !can_create {
        refusals.push(format!(
            "the target role \"{user}\" may not create schemas in database \"{db}\" (it needs CREATE on the database): GRANT CREATE ON DATABASE {db} TO {user}, or use a database it owns"
        ));
    }
    if has_state && !resume {
        refusals.push("the target holds the state of an earlier privaci run (schema _privaci): use --resume to finish it, or drop schema _privaci to start over".into());
    }
    let existing: HashSet<String> = target
        .query_text(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_privaci')",
        )
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    match mode {
        SchemaMode::Create if !resume => {
            let clash: Vec<&str> = cat
                .tables
                .iter()
                .filter(|t| existing.contains(&t.name.quoted))
                .map(|t| t.name.quoted.as_str())
                .collect();
            if !clash.is_empty() {
                refusals.push(format!(
                    "the target already has {} of the tables to create ({}): clone into an empty database, use --schema existing if your migrations made them, or --resume to finish an earlier run",
                    clash.len(),
                    first_few(&clash)
                ));
            }
        }
        SchemaMode::Existing => {
            let missing: Vec<&str> = cat
                .tables
                .iter()
                .filter(|t| !existing.contains(&t.name.quoted))
                .map(|t| t.name.quoted.as_str())
                .collect();
            if !missing.is_empty() {
                refusals.push(format!(
                    "--schema existing, but the target lacks {} table(s) ({}): run your migrations first, or let privaci create the schema",
                    missing.len(),
                    first_few(&missing)
                ));
            }
            if !resume {
                // privaci does not empty existing tables (their foreign keys forbid TRUNCATE):
                // they must start empty, or rows would be doubled.
                let present: Vec<&str> = cat
                    .tables
                    .iter()
                    .filter(|t| !t.is_partitioned() && existing.contains(&t.name.quoted))
                    .map(|t| t.name.quoted.as_str())
                    .collect();
                let mut not_empty: Vec<String> = Vec::new();
                for chunk in present.chunks(100) {
                    let sql = chunk
                        .iter()
                        .map(|q| {
                            format!(
                                "SELECT {} WHERE EXISTS (SELECT 1 FROM {q})",
                                crate::catalog::quote_literal(q)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" UNION ALL ");
                    not_empty.extend(
                        target
                            .query_text(&sql)
                            .await?
                            .into_iter()
                            .filter_map(|r| r.into_iter().next().flatten()),
                    );
                }
                if !not_empty.is_empty() {
                    let names: Vec<&str> = not_empty.iter().map(String::as_str).collect();
                    refusals.push(format!(
                        "--schema existing, but {} target table(s) already hold rows ({}): empty them first (privaci adds rows, it does not replace them)",
                        not_empty.len(),
                        first_few(&names)
                    ));
                }
            }
        }
        SchemaMode::Create => {}
    }
    Ok(refusals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_servers_are_refused() {
        let cat = Catalog {
            server_version_num: 110022,
            ..Catalog::default()
        };
        let r = check_source(&cat);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].contains("PostgreSQL 11.22, older than the oldest supported (12.0)"),
            "{}",
            r[0]
        );
        assert!(check_source(&Catalog {
            server_version_num: 150018,
            ..Catalog::default()
        })
        .is_empty());
    }
}
