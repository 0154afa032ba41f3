//! `privaci plan`: what a clone would do, read from the source (and the target, if given),
//! with nothing written anywhere.

use serde_json::json;
use std::collections::HashMap;

use super::{exit, OutputFormat, PlanArgs, SchemaArg};
use crate::catalog::Catalog;
use crate::config::resolve::{resolve, ResolvedTable, RuleSource};
use crate::conninfo::Config;
use crate::engine::preflight::{self, SchemaMode};
use crate::mask::StrategySpec;
use crate::schema::{self, Phase};

pub async fn run(args: PlanArgs) -> i32 {
    let (config, file, key) = match super::config_and_key(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter = match args.filter.filter_or_exit() {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (mut cat, misses) = match super::validate::load_catalog(&args.source, &filter).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("privaci: {e}");
            return exit::FAILED;
        }
    };
    if !misses.is_empty() {
        for m in misses {
            eprintln!("privaci: {m}");
        }
        return exit::INVALID_CONFIG;
    }
    if key.is_none() && config.needs_key() {
        eprintln!(
            "privaci: warning: {file}: {}",
            crate::config::resolve::missing_key_message(false)
        );
    }
    let resolved = match resolve(&config, &file, &cat, key.as_ref()) {
        Ok(r) => r,
        Err(errors) => {
            eprintln!(
                "privaci: the masking config has {} problem(s):",
                errors.len()
            );
            for e in errors {
                eprintln!("  {e}");
            }
            return exit::INVALID_CONFIG;
        }
    };
    let mut refusals = preflight::check_source(&cat);
    let mode = if args.schema == SchemaArg::Existing {
        SchemaMode::Existing
    } else {
        SchemaMode::Create
    };
    if let Some(target) = &args.target {
        let checked = async {
            let cfg = Config::parse(target).map_err(|e| crate::Error::from(e).context("target"))?;
            let mut conn = crate::conn::connect(&cfg)
                .await
                .map_err(|e| e.context("target"))?;
            preflight::fit_to_target(&mut conn, &mut cat, mode).await?;
            preflight::check_target(&mut conn, &cat, mode, args.resume).await
        }
        .await;
        match checked {
            Ok(r) => refusals.extend(r),
            Err(e) => {
                eprintln!("privaci: {e}");
                return exit::FAILED;
            }
        }
    }
    refusals.extend(preflight::check_unsupported(
        &cat,
        mode,
        args.skip_unsupported,
    ));
    match args.format {
        OutputFormat::Text => print!("{}", text(&cat, &resolved, &refusals)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&as_json(&cat, &resolved, &refusals)).unwrap_or_default()
        ),
    }
    if refusals.is_empty() {
        exit::SUCCESS
    } else {
        exit::PREFLIGHT
    }
}

fn strategy_text(s: &StrategySpec) -> String {
    match s {
        StrategySpec::Redact {
            keep_first,
            keep_last,
            ..
        } => format!("redact (keep_first {keep_first}, keep_last {keep_last})"),
        StrategySpec::DateShift { max_days } => format!("date_shift (max_days {max_days})"),
        StrategySpec::Noise { ratio } => format!("noise (ratio {ratio})"),
        StrategySpec::Email { keep_domain: true } => "email (keep_domain)".into(),
        StrategySpec::Digits { luhn: true } => "digits (luhn)".into(),
        StrategySpec::Json { paths } => format!(
            "json ({})",
            paths
                .iter()
                .map(|(p, s)| format!("{p} = {}", s.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.name().to_string(),
    }
}

fn source_text(s: &RuleSource) -> String {
    match s {
        RuleSource::Config => "config".into(),
        RuleSource::Parent(p) => format!("from parent {p}"),
        RuleSource::Propagated(from) => format!("propagated from {from}"),
        RuleSource::Unlisted => "unlisted".into(),
    }
}

fn human_bytes(n: i64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.0} kB", n / 1e3)
    }
}

/// Copy units (tables and partitions; chunks are not shown), largest first, in the order the
/// clone's own scheduler takes them.
fn units(cat: &Catalog) -> Vec<&crate::catalog::Table> {
    let mut units = crate::engine::units::plan(cat, 0);
    crate::engine::units::sort_largest_first(&mut units);
    let by_name: std::collections::HashMap<&crate::catalog::QualifiedName, &crate::catalog::Table> =
        cat.tables.iter().map(|t| (&t.name, t)).collect();
    units
        .iter()
        .filter_map(|u| by_name.get(&u.table).copied())
        .collect()
}

fn object_counts(cat: &Catalog) -> Vec<(String, usize)> {
    let pre = schema::pre_data(cat);
    let post = schema::post_data(cat);
    let count = |prefix: &str| {
        pre.iter()
            .chain(&post)
            .filter(|s| s.object.starts_with(prefix))
            .count()
    };
    let partitions = cat.tables.iter().filter(|t| t.parent.is_some()).count();
    let mut out: Vec<(String, usize)> = vec![
        ("schemas".into(), count("schema ")),
        ("extensions".into(), count("extension ")),
        ("types".into(), count("type ")),
        ("functions".into(), count("function ")),
        ("aggregates".into(), count("aggregate ")),
        (
            "sequences".into(),
            cat.sequences.iter().filter(|s| !s.identity).count(),
        ),
        (
            format!("tables ({partitions} of them partitions)"),
            count("table "),
        ),
        (
            "keys and unique constraints".into(),
            post.iter().filter(|s| s.phase == Phase::Keys).count(),
        ),
        (
            "indexes".into(),
            post.iter()
                .filter(|s| s.phase == Phase::Indexes && s.object.starts_with("index "))
                .count(),
        ),
        (
            "foreign keys".into(),
            post.iter()
                .filter(|s| s.phase == Phase::ForeignKeys)
                .count(),
        ),
        (
            "triggers".into(),
            post.iter().filter(|s| s.phase == Phase::Triggers).count(),
        ),
        (
            "views".into(),
            cat.views.iter().filter(|v| !v.materialized).count(),
        ),
        (
            "materialized views".into(),
            cat.views.iter().filter(|v| v.materialized).count(),
        ),
    ];
    use crate::catalog::ObjectKind as K;
    for (kind, label) in [
        (K::Collation, "collations"),
        (K::TextSearchDictionary, "text search dictionaries"),
        (K::TextSearchConfiguration, "text search configurations"),
        (K::Cast, "casts"),
        (K::Conversion, "conversions"),
        (K::Operator, "operators"),
        (
            K::OperatorFamily,
            "operator families (need a superuser target role)",
        ),
        (
            K::OperatorClass,
            "operator classes (need a superuser target role)",
        ),
    ] {
        out.push((
            label.into(),
            cat.objects.iter().filter(|o| o.kind == kind).count(),
        ));
    }
    let setting = |prefix: &str| {
        cat.settings
            .iter()
            .filter(|st| st.object.starts_with(prefix))
            .count()
    };
    out.extend([
        ("row-level security policies".into(), setting("policy ")),
        ("rules".into(), setting("rule ")),
        ("extended statistics".into(), setting("statistics ")),
        (
            "table settings (storage, replica identity, clustering, row security...)".into(),
            cat.settings.len()
                - setting("policy ")
                - setting("rule ")
                - setting("statistics ")
                - setting("comment on "),
        ),
        ("publications".into(), cat.publications.len()),
        (
            "large objects (copied as they are; --no-large-objects leaves them out)".into(),
            cat.large_objects.len(),
        ),
        (
            "grants and default privileges (made with --privileges)".into(),
            cat.grants.len(),
        ),
    ]);
    out
}

/// Masked columns that a CHECK constraint (the table's, or their domain's) reads: the target
/// checks the masked value, which may not satisfy it. Said in the plan, before a run.
fn check_warnings(cat: &Catalog, resolved: &[ResolvedTable]) -> Vec<String> {
    use crate::catalog::{ConstraintKind, TypeDef};
    let mut out = Vec::new();
    for r in resolved.iter().filter(|r| r.parent.is_none()) {
        let Some(t) = cat.table(&r.table.schema, &r.table.name) else {
            continue;
        };
        let masked = |name: &str| {
            r.columns.iter().any(|c| {
                c.name == name
                    && c.copied
                    && !matches!(c.strategy, StrategySpec::Keep | StrategySpec::Default)
            })
        };
        for c in t
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::Check)
        {
            let read: Vec<&str> = c
                .columns
                .iter()
                .map(String::as_str)
                .filter(|n| masked(n))
                .collect();
            if !read.is_empty() {
                out.push(format!(
                    "{}: CHECK constraint {} reads masked column(s) {}: {}",
                    t.name,
                    c.name,
                    read.join(", "),
                    c.definition
                ));
            }
        }
        for col in t.columns.iter().filter(|c| masked(&c.name)) {
            let domain = cat.types.iter().find(|ty| ty.oid == col.type_oid);
            if let Some(TypeDef::Domain { checks, .. }) = domain.map(|d| &d.def) {
                for (name, def) in checks {
                    out.push(format!(
                        "{}: column {} is masked, and its domain {} checks {name}: {def}",
                        t.name,
                        col.name,
                        domain.map(|d| d.name.to_string()).unwrap_or_default()
                    ));
                }
            }
        }
    }
    out
}

/// Each table's resolved masking, by name (looked up per unit: linear in tables).
fn by_name(resolved: &[ResolvedTable]) -> HashMap<&crate::catalog::QualifiedName, &ResolvedTable> {
    resolved.iter().map(|r| (&r.table, r)).collect()
}

fn text(cat: &Catalog, resolved: &[ResolvedTable], refusals: &[String]) -> String {
    let by_table = by_name(resolved);
    let mut out = String::new();
    let units = units(cat);
    let rows: i64 = units.iter().map(|t| t.estimated_rows).sum();
    let bytes: i64 = units.iter().map(|t| t.size_bytes).sum();
    out += &format!(
        "Source: PostgreSQL {}.{}; {} units to copy, about {rows} rows and {} (largest first):\n",
        cat.server_version_num / 10000,
        cat.server_version_num % 10000,
        units.len(),
        human_bytes(bytes)
    );
    for t in &units {
        let r = by_table.get(&t.name).copied();
        let masked = r.is_some_and(|r| r.is_masked());
        let text_copy = r
            .filter(|r| !r.text_fallback.is_empty())
            .map(|r| {
                format!(
                    "  [text COPY: no two-way binary I/O for {}]",
                    r.text_fallback.join(", ")
                )
            })
            .unwrap_or_default();
        out += &format!(
            "  {:<45} {:>10} rows {:>9}{}{}{text_copy}\n",
            t.name.to_string(),
            t.estimated_rows,
            human_bytes(t.size_bytes),
            t.parent
                .as_ref()
                .map(|p| format!("  partition of {p}"))
                .unwrap_or_default(),
            if masked { "  [masked]" } else { "" }
        );
    }
    out += "\nMasking (tables with rules of their own; partitions follow their parent):\n";
    let mut any = false;
    for r in resolved.iter().filter(|r| r.parent.is_none()) {
        let listed: Vec<_> = r
            .columns
            .iter()
            .filter(|c| c.source != RuleSource::Unlisted)
            .collect();
        if listed.is_empty() {
            continue;
        }
        any = true;
        out += &format!(
            "  {}{}\n",
            r.table,
            if r.partitioned {
                " (partitioned: applies to every partition)"
            } else {
                ""
            }
        );
        for c in listed {
            out += &format!(
                "    {:<24} {:<34} ({})\n",
                c.name,
                strategy_text(&c.strategy),
                source_text(&c.source)
            );
        }
    }
    if !any {
        out += "  none: every column is copied as it is\n";
    }
    let checks = check_warnings(cat, resolved);
    if !checks.is_empty() {
        out += "\nMasked columns read by CHECK constraints (the target checks masked values and may reject them; choose a strategy whose output satisfies the check, or keep the column):\n";
        for w in checks {
            out += &format!("  {w}\n");
        }
    }
    out += "\nObjects to create on the target:\n";
    for (what, n) in object_counts(cat) {
        if n > 0 {
            out += &format!("  {n:>4} {what}\n");
        }
    }
    if !cat.unsupported.is_empty() {
        out +=
            "\nNot supported (refused at pre-flight unless --skip-unsupported; then left out):\n";
        for (kind, name, why) in &cat.unsupported {
            out += &format!("  {kind} {name}: {why}\n");
        }
    }
    if refusals.is_empty() {
        out += "\nPre-flight: no refusals.\n";
    } else {
        out += "\nRefused at pre-flight (exit 2):\n";
        for r in refusals {
            out += &format!("  - {r}\n");
        }
    }
    out
}

fn as_json(cat: &Catalog, resolved: &[ResolvedTable], refusals: &[String]) -> serde_json::Value {
    let by_table = by_name(resolved);
    json!({
        "server_version_num": cat.server_version_num,
        "units": units(cat).iter().map(|t| json!({
            "table": t.name.to_string(),
            "partition_of": t.parent.as_ref().map(|p| p.to_string()),
            "bound": t.bound,
            "estimated_rows": t.estimated_rows,
            "size_bytes": t.size_bytes,
            "copy_format": if by_table.get(&t.name).is_some_and(|r| !r.text_fallback.is_empty()) { "text" } else { "binary" },
            "columns": by_table.get(&t.name).map(|r| r.columns.iter().map(|c| json!({
                "name": c.name,
                "type": c.type_name,
                "strategy": c.strategy.name(),
                "detail": strategy_text(&c.strategy),
                "source": source_text(&c.source),
                "copied": c.copied,
            })).collect::<Vec<_>>()),
        })).collect::<Vec<_>>(),
        "objects": object_counts(cat).into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
        "check_warnings": check_warnings(cat, resolved),
        "unsupported": cat.unsupported.iter().map(|(k, n, w)| json!({"kind": k, "name": n, "why": w})).collect::<Vec<_>>(),
        "refusals": refusals,
    })
}
