//! The catalog queries. Each returns text rows that are parsed into the model; lists of
//! names are joined with the unit separator (0x1f), which no identifier contains in practice.

use std::collections::HashMap;

use super::*;

pub(super) const SYSTEM: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'";
const SEP: char = '\u{1f}';

pub(super) fn not_extension_member(class: &str, oid: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{class}'::regclass AND d.objid = {oid} AND d.deptype = 'e')")
}

pub(super) type Row = Vec<Option<String>>;

pub(super) struct Get<'a>(pub(super) &'a Row, pub(super) &'static str);

impl Get<'_> {
    pub(super) fn s(&self, i: usize) -> Result<String, Error> {
        self.0
            .get(i)
            .cloned()
            .flatten()
            .ok_or_else(|| bad_row(self.1))
    }
    pub(super) fn opt(&self, i: usize) -> Option<String> {
        self.0.get(i).cloned().flatten()
    }
    fn i64(&self, i: usize) -> Result<i64, Error> {
        self.s(i)?.parse().map_err(|_| bad_row(self.1))
    }
    pub(super) fn u32(&self, i: usize) -> Result<u32, Error> {
        self.s(i)?.parse().map_err(|_| bad_row(self.1))
    }
    pub(super) fn bool(&self, i: usize) -> Result<bool, Error> {
        Ok(self.s(i)? == "t")
    }
    fn list(&self, i: usize) -> Vec<String> {
        self.opt(i)
            .map(|s| s.split(SEP).map(str::to_string).collect())
            .unwrap_or_default()
    }
    pub(super) fn name(&self, schema: usize) -> Result<QualifiedName, Error> {
        Ok(QualifiedName {
            schema: self.s(schema)?,
            name: self.s(schema + 1)?,
            quoted: self.s(schema + 2)?,
        })
    }
    fn opt_name(&self, schema: usize) -> Result<Option<QualifiedName>, Error> {
        if self.opt(schema).is_none() {
            return Ok(None);
        }
        self.name(schema).map(Some)
    }
}

pub(super) async fn rows(conn: &mut Connection, what: &str, sql: &str) -> Result<Vec<Row>, Error> {
    conn.query_text(sql)
        .await
        .map_err(|e| catalog_error(what, e))
}

/// Reads the whole catalog model, then keeps what `filter` takes.
pub async fn load(conn: &mut Connection, filter: &Filter) -> Result<Catalog, Error> {
    // As pg_dump: with an empty search path the server's deparsers qualify every name that
    // is not in pg_catalog, so definitions mean the same on a target whose search path (or
    // the role's, or an extension's schema) differs from the source session's.
    // JIT off, as pg_dump does: compiling the catalog queries' expressions costs seconds on
    // a database of thousands of tables (4.2 s against 0.6 s for one query at 20,000) and saves
    // nothing on queries that run once.
    conn.execute("SELECT pg_catalog.set_config('search_path', '', false); SET jit = off")
        .await
        .map_err(|e| catalog_error("search path", e))?;
    let mut cat = Catalog {
        server_version_num: server_version_num(conn).await?,
        ..Catalog::default()
    };

    for r in rows(conn, "schemas", &format!(
        "SELECT n.nspname, quote_ident(n.nspname), obj_description(n.oid, 'pg_namespace') FROM pg_namespace n
         WHERE {SYSTEM} AND {} ORDER BY 1", not_extension_member("pg_namespace", "n.oid"))).await?
    {
        let g = Get(&r, "schemas");
        cat.schemas.push(Schema { name: g.s(0)?, quoted: g.s(1)?, comment: g.opt(2) });
    }

    for r in rows(conn, "extensions", "SELECT e.extname, n.nspname, e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1").await? {
        let g = Get(&r, "extensions");
        cat.extensions.push(Extension { name: g.s(0)?, schema: g.s(1)?, version: g.s(2)? });
    }

    load_types(conn, &mut cat).await?;
    load_sequences(conn, &mut cat).await?;
    load_tables(conn, &mut cat).await?;
    load_indexes(conn, &mut cat).await?;
    load_settings(conn, &mut cat).await?;
    cat.deps = super::deps::load(conn).await?;

    for r in rows(conn, "views", &format!(
        "SELECT c.oid, n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind = 'm', c.relispopulated,
                pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class'),
                (SELECT string_agg(split_part(o, '=', 1) || '=' || quote_literal(substr(o, strpos(o, '=') + 1)), ', ') FROM unnest(c.reloptions) o WHERE o !~ '^check_option='),
                (SELECT upper(substr(o, 14)) FROM unnest(c.reloptions) o WHERE o ~ '^check_option='),
                (SELECT string_agg(concat_ws('; ',
                    CASE WHEN d.adbin IS NOT NULL THEN 'ALTER TABLE ONLY ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ALTER COLUMN ' || quote_ident(a.attname) || ' SET DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) END,
                    CASE WHEN col_description(c.oid, a.attnum) IS NOT NULL THEN 'COMMENT ON COLUMN ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname) || ' IS ' || quote_literal(col_description(c.oid, a.attnum)) END), E'\x1f' ORDER BY a.attnum)
                 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND (d.adbin IS NOT NULL OR col_description(c.oid, a.attnum) IS NOT NULL))
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('v', 'm') AND {SYSTEM} AND {} ORDER BY c.oid", not_extension_member("pg_class", "c.oid"))).await?
    {
        let g = Get(&r, "views");
        cat.views.push(View {
            oid: g.u32(0)?,
            name: g.name(1)?,
            materialized: g.bool(4)?,
            populated: g.bool(5)?,
            definition: g.s(6)?,
            comment: g.opt(7),
            options: g.opt(8),
            check_option: g.opt(9),
            column_settings: g.list(10),
        });
    }

    for r in rows(conn, "functions", &format!(
        "SELECT n.nspname, p.proname, quote_ident(n.nspname) || '.' || quote_ident(p.proname), pg_get_function_identity_arguments(p.oid),
                CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END, obj_description(p.oid, 'pg_proc'), p.prokind, p.oid,
                l.lanname, l.lanpltrusted OR l.lanname IN ('sql', 'plpgsql')
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
         WHERE {SYSTEM} AND {} ORDER BY p.oid",
        // Range constructors and the like depend internally on their type: they come with it.
        not_extension_member("pg_proc", "p.oid").replace("deptype = 'e'", "deptype IN ('e', 'i')"))).await?
    {
        let g = Get(&r, "functions");
        if !g.bool(9)? && g.s(6)? != "a" {
            if !filter.takes_schema(&g.s(0)?) {
                continue;
            }
            cat.unsupported.push(("function".into(), format!("{}({})", g.name(0)?, g.s(3)?), format!("written in {}, which only a superuser can create functions in", g.s(8)?)));
            continue;
        }
        match (g.opt(4), g.s(6)?.as_str()) {
            (Some(definition), _) => cat.functions.push(Function { oid: g.u32(7)?, name: g.name(0)?, arguments: g.s(3)?, definition, comment: g.opt(5), aggregate: false }),
            (None, "a") => {} // read below, with its aggregate's settings
            _ if !filter.takes_schema(&g.s(0)?) => {}
            _ => cat.unsupported.push(("window function".into(), format!("{}({})", g.name(0)?, g.s(3)?), "window functions are written in C, which only a superuser can create; create it on the target first".into())),
        }
    }
    load_aggregates(conn, &mut cat).await?;

    for r in rows(conn, "triggers", &format!(
        "SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), t.tgname,
                pg_get_triggerdef(t.oid) || CASE t.tgenabled
                    WHEN 'D' THEN '; ALTER TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' DISABLE TRIGGER ' || quote_ident(t.tgname)
                    WHEN 'R' THEN '; ALTER TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ENABLE REPLICA TRIGGER ' || quote_ident(t.tgname)
                    WHEN 'A' THEN '; ALTER TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ENABLE ALWAYS TRIGGER ' || quote_ident(t.tgname)
                    ELSE '' END
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {SYSTEM} ORDER BY 1, 2, 4")).await?
    {
        let g = Get(&r, "triggers");
        cat.triggers.push(Trigger { table: g.name(0)?, name: g.s(3)?, definition: g.s(4)? });
    }

    // What privaci does not create (a superuser's objects, or kinds not cloned yet), each with
    // its schema (none for database-wide objects), so that none is left out silently.
    // Parts another object made for itself (a range's casts to its multirange) come with it.
    let member = |class: &str, oid: &str| {
        not_extension_member(class, oid).replace("deptype = 'e'", "deptype IN ('e', 'i')")
    };
    for r in rows(conn, "unsupported objects", &format!(
        "SELECT 'foreign table', n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'foreign tables are not cloned'
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'f' AND {SYSTEM} AND {rel}
         UNION ALL SELECT 'base type', n.nspname, quote_ident(n.nspname) || '.' || quote_ident(t.typname), 'base types need C functions, which only a superuser can create'
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE t.typtype = 'b' AND t.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid) AND {SYSTEM} AND {typ}
         UNION ALL SELECT 'event trigger', NULL, quote_ident(e.evtname), 'event triggers need a superuser'
           FROM pg_event_trigger e WHERE {evt}
         UNION ALL SELECT 'foreign server', NULL, quote_ident(s.srvname), 'foreign servers are not cloned'
           FROM pg_foreign_server s WHERE {srv}
         UNION ALL SELECT 'language', NULL, quote_ident(l.lanname), 'procedural languages need a superuser or an extension'
           FROM pg_language l WHERE l.oid >= 16384 AND {lang}
         UNION ALL SELECT 'access method', NULL, quote_ident(a.amname), 'access methods need a superuser'
           FROM pg_am a WHERE a.oid >= 16384 AND {am}
         UNION ALL SELECT 'text search parser', n.nspname, quote_ident(n.nspname) || '.' || quote_ident(p.prsname), 'text search parsers need C functions and a superuser'
           FROM pg_ts_parser p JOIN pg_namespace n ON n.oid = p.prsnamespace WHERE {SYSTEM} AND {prs}
         UNION ALL SELECT 'text search template', n.nspname, quote_ident(n.nspname) || '.' || quote_ident(t.tmplname), 'text search templates need C functions and a superuser'
           FROM pg_ts_template t JOIN pg_namespace n ON n.oid = t.tmplnamespace WHERE {SYSTEM} AND {tmpl}
         UNION ALL SELECT 'transform', NULL, format('FOR %s LANGUAGE %s', format_type(t.trftype, NULL), (SELECT lanname FROM pg_language WHERE oid = t.trflang)), 'transforms are not cloned'
           FROM pg_transform t WHERE t.oid >= 16384 AND {trf}
         UNION ALL SELECT 'foreign-data wrapper', NULL, quote_ident(w.fdwname), 'foreign-data wrappers need a superuser'
           FROM pg_foreign_data_wrapper w WHERE {fdw}",
        rel = member("pg_class", "c.oid"),
        typ = member("pg_type", "t.oid"),
        evt = member("pg_event_trigger", "e.oid"),
        srv = member("pg_foreign_server", "s.oid"),
        lang = member("pg_language", "l.oid"),
        am = member("pg_am", "a.oid"),
        prs = member("pg_ts_parser", "p.oid"),
        tmpl = member("pg_ts_template", "t.oid"),
        trf = member("pg_transform", "t.oid"),
        fdw = member("pg_foreign_data_wrapper", "w.oid"),
    )).await?
    {
        let g = Get(&r, "unsupported objects");
        if g.opt(1).is_none_or(|schema| filter.takes_schema(&schema)) {
            cat.unsupported.push((g.s(0)?, g.s(2)?, g.s(3)?));
        }
    }

    super::objects::load(conn, &mut cat, filter).await?;
    super::privileges::load(conn, &mut cat).await?;
    apply_filter(&mut cat, filter);
    Ok(cat)
}

/// Aggregates as `CREATE AGGREGATE` statements, as pg_dump writes them: ordinary,
/// ordered-set and hypothetical-set, with their moving-aggregate and parallel settings.
async fn load_aggregates(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    let func = |col: &str| {
        format!("CASE WHEN a.{col} <> 0 THEN (SELECT quote_ident(fn.nspname) || '.' || quote_ident(fp.proname) FROM pg_proc fp JOIN pg_namespace fn ON fn.oid = fp.pronamespace WHERE fp.oid = a.{col}) END")
    };
    let sql = format!(
        "SELECT p.oid, n.nspname, p.proname, quote_ident(n.nspname) || '.' || quote_ident(p.proname),
                CASE WHEN p.pronargs = 0 THEN '*' ELSE pg_get_function_arguments(p.oid) END,
                CASE WHEN p.pronargs = 0 THEN '*' ELSE pg_get_function_identity_arguments(p.oid) END,
                a.aggkind, {transfn}, format_type(a.aggtranstype, NULL), a.aggtransspace, {finalfn}, a.aggfinalextra, a.aggfinalmodify,
                {combinefn}, {serialfn}, {deserialfn}, a.agginitval,
                {mtransfn}, {minvtransfn}, CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END, a.aggmtransspace,
                {mfinalfn}, a.aggmfinalextra, a.aggmfinalmodify, a.aggminitval,
                CASE WHEN a.aggsortop <> 0 THEN (SELECT CASE WHEN opn.nspname = 'pg_catalog' THEN o.oprname ELSE 'OPERATOR(' || quote_ident(opn.nspname) || '.' || o.oprname || ')' END
                     FROM pg_operator o JOIN pg_namespace opn ON opn.oid = o.oprnamespace WHERE o.oid = a.aggsortop) END,
                p.proparallel, obj_description(p.oid, 'pg_proc')
         FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {SYSTEM} AND {} ORDER BY p.oid",
        not_extension_member("pg_proc", "p.oid"),
        transfn = func("aggtransfn"),
        finalfn = func("aggfinalfn"),
        combinefn = func("aggcombinefn"),
        serialfn = func("aggserialfn"),
        deserialfn = func("aggdeserialfn"),
        mtransfn = func("aggmtransfn"),
        minvtransfn = func("aggminvtransfn"),
        mfinalfn = func("aggmfinalfn"),
    );
    let modify = |m: &str| match m {
        "s" => "SHAREABLE",
        "w" => "READ_WRITE",
        _ => "READ_ONLY",
    };
    for r in rows(conn, "aggregates", &sql).await? {
        let g = Get(&r, "aggregates");
        let name = g.name(1)?;
        let mut opts = vec![
            format!("SFUNC = {}", g.s(7)?),
            format!("STYPE = {}", g.s(8)?),
        ];
        if g.s(9)? != "0" {
            opts.push(format!("SSPACE = {}", g.s(9)?));
        }
        if let Some(f) = g.opt(10) {
            opts.push(format!("FINALFUNC = {f}"));
            if g.bool(11)? {
                opts.push("FINALFUNC_EXTRA".into());
            }
            opts.push(format!("FINALFUNC_MODIFY = {}", modify(&g.s(12)?)));
        }
        for (i, what) in [
            (13, "COMBINEFUNC"),
            (14, "SERIALFUNC"),
            (15, "DESERIALFUNC"),
        ] {
            if let Some(f) = g.opt(i) {
                opts.push(format!("{what} = {f}"));
            }
        }
        if let Some(v) = g.opt(16) {
            opts.push(format!("INITCOND = {}", quote_literal(&v)));
        }
        if let Some(f) = g.opt(17) {
            opts.push(format!("MSFUNC = {f}"));
            if let Some(inv) = g.opt(18) {
                opts.push(format!("MINVFUNC = {inv}"));
            }
            if let Some(t) = g.opt(19) {
                opts.push(format!("MSTYPE = {t}"));
            }
            if g.s(20)? != "0" {
                opts.push(format!("MSSPACE = {}", g.s(20)?));
            }
            if let Some(mf) = g.opt(21) {
                opts.push(format!("MFINALFUNC = {mf}"));
                if g.bool(22)? {
                    opts.push("MFINALFUNC_EXTRA".into());
                }
                opts.push(format!("MFINALFUNC_MODIFY = {}", modify(&g.s(23)?)));
            }
            if let Some(v) = g.opt(24) {
                opts.push(format!("MINITCOND = {}", quote_literal(&v)));
            }
        }
        if let Some(op) = g.opt(25) {
            opts.push(format!("SORTOP = {op}"));
        }
        match g.s(26)?.as_str() {
            "s" => opts.push("PARALLEL = safe".into()),
            "r" => opts.push("PARALLEL = restricted".into()),
            _ => {}
        }
        if g.s(6)? == "h" {
            opts.push("HYPOTHETICAL".into());
        }
        let definition = format!(
            "CREATE AGGREGATE {}({}) (\n    {}\n)",
            name.quoted,
            g.s(4)?,
            opts.join(",\n    ")
        );
        cat.functions.push(Function {
            oid: g.u32(0)?,
            name,
            arguments: g.s(5)?,
            definition,
            comment: g.opt(27),
            aggregate: true,
        });
    }
    Ok(())
}

async fn load_types(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    let mut labels: HashMap<u32, Vec<String>> = HashMap::new();
    for r in rows(
        conn,
        "enum labels",
        "SELECT enumtypid, enumlabel FROM pg_enum ORDER BY enumtypid, enumsortorder",
    )
    .await?
    {
        let g = Get(&r, "enum labels");
        labels.entry(g.u32(0)?).or_default().push(g.s(1)?);
    }
    let mut checks: HashMap<u32, Vec<(String, String)>> = HashMap::new();
    for r in rows(conn, "domain constraints", "SELECT contypid, quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid <> 0 AND contype = 'c' ORDER BY contypid, conname").await? {
        let g = Get(&r, "domain constraints");
        checks.entry(g.u32(0)?).or_default().push((g.s(1)?, g.s(2)?));
    }
    let mut constraint_comments: HashMap<u32, Vec<String>> = HashMap::new();
    for r in rows(conn, "domain constraint comments", "SELECT k.contypid, 'COMMENT ON CONSTRAINT ' || quote_ident(k.conname) || ' ON DOMAIN ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || ' IS ' || quote_literal(d.description)
         FROM pg_constraint k JOIN pg_description d ON d.objoid = k.oid AND d.classoid = 'pg_constraint'::regclass
         JOIN pg_type t ON t.oid = k.contypid JOIN pg_namespace n ON n.oid = t.typnamespace WHERE k.contypid <> 0 ORDER BY k.contypid, k.conname").await? {
        let g = Get(&r, "domain constraint comments");
        constraint_comments.entry(g.u32(0)?).or_default().push(g.s(1)?);
    }
    let mut attributes: HashMap<u32, Vec<(String, String, u32)>> = HashMap::new();
    let mut attribute_comments: HashMap<u32, Vec<String>> = HashMap::new();
    for r in rows(conn, "composite attributes",
        "SELECT t.oid, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                CASE WHEN at.typcategory = 'A' THEN at.typelem ELSE a.atttypid END,
                'COMMENT ON COLUMN ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || '.' || quote_ident(a.attname) || ' IS ' || quote_literal(col_description(t.typrelid, a.attnum))
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_attribute a ON a.attrelid = t.typrelid JOIN pg_type at ON at.oid = a.atttypid
         WHERE t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY t.oid, a.attnum").await?
    {
        let g = Get(&r, "composite attributes");
        attributes.entry(g.u32(0)?).or_default().push((g.s(1)?, g.s(2)?, g.u32(3)?));
        if let Some(c) = g.opt(4) {
            attribute_comments.entry(g.u32(0)?).or_default().push(c);
        }
    }
    for r in rows(conn, "types", &format!(
        "SELECT t.oid, n.nspname, t.typname, quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typtype, obj_description(t.oid, 'pg_type'),
                format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
                CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE t.typbasetype END,
                format_type(r.rngsubtype, NULL), r.rngsubtype,
                CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::regproc::text END,
                CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN quote_ident(rcn.nspname) || '.' || quote_ident(rco.collname) END,
                CASE WHEN NOT oc.opcdefault THEN quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
         LEFT JOIN pg_collation co ON co.oid = t.typcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
         LEFT JOIN pg_range r ON r.rngtypid = t.oid LEFT JOIN pg_type st ON st.oid = r.rngsubtype
         LEFT JOIN pg_collation rco ON rco.oid = r.rngcollation LEFT JOIN pg_namespace rcn ON rcn.oid = rco.collnamespace
         LEFT JOIN pg_opclass oc ON oc.oid = r.rngsubopc LEFT JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
         WHERE {SYSTEM} AND t.typtype IN ('e', 'd', 'c', 'r')
           AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
           AND {}
         ORDER BY t.oid", not_extension_member("pg_type", "t.oid"))).await?
    {
        let g = Get(&r, "types");
        let oid = g.u32(0)?;
        let (def, depends_on) = match g.s(4)?.as_str() {
            "e" => (TypeDef::Enum { labels: labels.remove(&oid).unwrap_or_default() }, vec![]),
            "d" => (
                TypeDef::Domain { base: g.s(6)?, not_null: g.bool(7)?, default: g.opt(8), collation: g.opt(9), checks: checks.remove(&oid).unwrap_or_default() },
                vec![g.u32(10)?],
            ),
            "c" => {
                let attrs = attributes.remove(&oid).unwrap_or_default();
                let deps = attrs.iter().map(|a| a.2).collect();
                (TypeDef::Composite { attributes: attrs.into_iter().map(|(n, t, _)| (n, t)).collect() }, deps)
            }
            _ => {
                let mut options = Vec::new();
                if let Some(diff) = g.opt(13) {
                    options.push(format!("subtype_diff = {diff}"));
                }
                if let Some(coll) = g.opt(14) {
                    options.push(format!("collation = {coll}"));
                }
                if let Some(opc) = g.opt(15) {
                    options.push(format!("subtype_opclass = {opc}"));
                }
                (TypeDef::Range { subtype: g.s(11)?, options }, vec![g.u32(12)?])
            }
        };
        cat.types.push(UserType {
            oid,
            name: g.name(1)?,
            def,
            depends_on,
            comment: g.opt(5),
            attribute_comments: attribute_comments.remove(&oid).unwrap_or_default(),
            constraint_comments: constraint_comments.remove(&oid).unwrap_or_default(),
        });
    }
    Ok(())
}

async fn load_sequences(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    let mut readable = Vec::new();
    for r in rows(conn, "sequences", &format!(
        "SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                dn.nspname, dc.relname, quote_ident(dn.nspname) || '.' || quote_ident(dc.relname), quote_ident(a.attname), d.deptype,
                has_sequence_privilege(c.oid, 'SELECT'), c.oid, c.relpersistence = 'u', obj_description(c.oid, 'pg_class'),
                CASE WHEN has_sequence_privilege(c.oid, 'SELECT') THEN pg_sequence_last_value(c.oid) END
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
         LEFT JOIN pg_class dc ON dc.oid = d.refobjid LEFT JOIN pg_namespace dn ON dn.oid = dc.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE {SYSTEM} AND {} ORDER BY 1, 2", not_extension_member("pg_class", "c.oid"))).await?
    {
        let g = Get(&r, "sequences");
        let name = g.name(0)?;
        // The position of a sequence that has handed out a value comes with the list, in
        // the same query; one that has not (`is_called` false, its next value set by
        // setval or its start) is read apart, below.
        let called = g.opt(19).map(|v| v.parse::<i64>()).transpose().map_err(|_| {
            Error::new(ErrorKind::Protocol, "catalog query \"sequences\" returned a position that is not a number")
        })?;
        if g.bool(15)? && called.is_none() {
            readable.push(name.quoted.clone());
        }
        cat.sequences.push(Sequence {
            oid: g.u32(16)?,
            name,
            data_type: g.s(3)?,
            start: g.i64(4)?,
            increment: g.i64(5)?,
            min: g.i64(6)?,
            max: g.i64(7)?,
            cache: g.i64(8)?,
            cycle: g.bool(9)?,
            owned_by: match g.opt_name(10)? {
                Some(t) => Some((t, g.s(13)?)),
                None => None,
            },
            identity: g.opt(14).as_deref() == Some("i"),
            last_value: called.map(|v| (v, true)),
            unlogged: g.bool(17)?,
            comment: g.opt(18),
        });
    }
    // One query reads a thousand of the others' positions.
    let by_name: HashMap<String, usize> = cat
        .sequences
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.quoted.clone(), i))
        .collect();
    for chunk in readable.chunks(1000) {
        let sql = chunk
            .iter()
            .map(|q| {
                format!(
                    "SELECT {}, last_value, is_called FROM {q}",
                    quote_literal(q)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for r in rows(conn, "sequence values", &sql).await? {
            let g = Get(&r, "sequence values");
            let quoted = g.s(0)?;
            if let Some(&i) = by_name.get(&quoted) {
                cat.sequences[i].last_value = Some((g.i64(1)?, g.bool(2)?));
            }
        }
    }
    Ok(())
}

/// The tables and partitioned tables `filter` takes that the connected role may read, as
/// quoted names: what a run locks before it takes its snapshot. Read outside any snapshot.
pub async fn lockable_tables(
    conn: &mut Connection,
    filter: &Filter,
) -> Result<Vec<QualifiedName>, Error> {
    let mut out = Vec::new();
    for r in
        rows(
            conn,
            "tables to lock",
            &format!(
        "SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND {SYSTEM} AND {} AND has_table_privilege(c.oid, 'SELECT')
         ORDER BY 1, 2", not_extension_member("pg_class", "c.oid")),
        )
        .await?
    {
        let name = Get(&r, "tables to lock").name(0)?;
        if filter.takes_table(&name.schema, &name.name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The filter's names that match nothing on the server, each as a sentence. A misspelled
/// `--exclude-table` would otherwise copy the table the user meant to leave out.
pub async fn filter_misses(conn: &mut Connection, filter: &Filter) -> Result<Vec<String>, Error> {
    if *filter == Filter::default() {
        return Ok(Vec::new());
    }
    let schemas: std::collections::HashSet<String> =
        rows(conn, "schemas", "SELECT nspname FROM pg_namespace")
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
    let mut misses = Vec::new();
    for (flag, names) in [
        ("--include-schema", &filter.include_schemas),
        ("--exclude-schema", &filter.exclude_schemas),
    ] {
        for n in names.iter().filter(|n| !schemas.contains(*n)) {
            misses.push(format!(
                "{flag} {} matches no schema on the source",
                quote_for_message(n)
            ));
        }
    }
    if !filter.exclude_tables.is_empty() {
        let relations: std::collections::HashSet<(String, String)> = rows(conn, "relations",
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')")
            .await?
            .into_iter()
            .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
            .collect();
        for (schema, table) in filter
            .exclude_tables
            .iter()
            .filter(|t| !relations.contains(*t))
        {
            misses.push(format!(
                "--exclude-table {}.{} matches no table on the source (names are folded to lower case unless double-quoted: '\"Name\"'; without a schema, public)",
                quote_for_message(schema),
                quote_for_message(table)
            ));
        }
    }
    Ok(misses)
}

/// A name as SQL would need it written: bare when it reads back the same, quoted otherwise.
fn quote_for_message(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if bare {
        s.to_string()
    } else {
        super::quote_ident(s)
    }
}

/// A user-defined type's OID and kind, to map OIDs embedded in binary values (arrays and
/// records of user types) from the source's to the target's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeOid {
    pub oid: u32,
    /// `"schema"."name"`, the key that matches a type across databases.
    pub quoted: String,
    pub composite: bool,
    /// For an array type, its element type.
    pub array_of: Option<u32>,
}

/// Every type with an OID past the built-in range (user types, and arrays of them).
pub async fn type_oids(
    conn: &mut Connection,
    first_normal_oid: u32,
) -> Result<Vec<TypeOid>, Error> {
    let mut out = Vec::new();
    for r in rows(conn, "type OIDs", &format!(
        "SELECT t.oid, quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typtype = 'c',
                CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem END
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid >= {first_normal_oid}")).await?
    {
        let g = Get(&r, "type OIDs");
        out.push(TypeOid {
            oid: g.u32(0)?,
            quoted: g.s(1)?,
            composite: g.bool(2)?,
            array_of: g.opt(3).map(|s| s.parse().map_err(|_| bad_row("type OIDs"))).transpose()?,
        });
    }
    Ok(out)
}

/// Source OIDs of user-defined types mapped to the target's, by quoted name (what binary
/// values embedding them need rewritten to).
pub fn oid_map(source: Vec<TypeOid>, target: Vec<TypeOid>) -> crate::mask::remap::OidMap {
    use crate::mask::remap::{OidKind, OidMap};
    let dst: HashMap<String, u32> = target.into_iter().map(|t| (t.quoted, t.oid)).collect();
    let mut map = OidMap::default();
    for t in source {
        let kind = if t.composite {
            OidKind::Composite
        } else if let Some(elem) = t.array_of {
            OidKind::Array { elem }
        } else {
            OidKind::Plain
        };
        if let Some(&oid) = dst.get(&t.quoted) {
            map.map.insert(t.oid, (oid, kind));
        }
    }
    map
}

/// A SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn load_tables(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    for r in rows(conn, "tables", &format!(
        "SELECT c.oid, n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relpersistence = 'u',
                CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, p.partstrat,
                CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                pn.nspname, pc.relname, quote_ident(pn.nspname) || '.' || quote_ident(pc.relname),
                greatest(c.reltuples, 0)::bigint, sz.main + sz.toast, obj_description(c.oid, 'pg_class'),
                has_table_privilege(c.oid, 'SELECT'),
                sz.main / current_setting('block_size')::bigint,
                c.relrowsecurity AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user)
                  AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')),
                CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
         LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
         LEFT JOIN pg_class pc ON pc.oid = i.inhparent LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
         -- The files' sizes, read once per table: the main fork (its pages bound the chunks)
         -- and the TOAST table's. (pg_table_size would also stat the free space and
         -- visibility maps and TOAST index: three times the cost at thousands of tables.)
         CROSS JOIN LATERAL (SELECT pg_relation_size(c.oid) AS main,
                                    CASE WHEN c.reltoastrelid <> 0 THEN pg_relation_size(c.reltoastrelid) ELSE 0 END AS toast) sz
         WHERE c.relkind IN ('r', 'p') AND {SYSTEM} AND {}
         ORDER BY n.nspname, c.relname", not_extension_member("pg_class", "c.oid"))).await?
    {
        let g = Get(&r, "tables");
        let partitioning = match (g.opt(5), g.opt(6).as_deref()) {
            (Some(key), Some(s)) => Some((
                match s {
                    "r" => PartitionStrategy::Range,
                    "l" => PartitionStrategy::List,
                    _ => PartitionStrategy::Hash,
                },
                key,
            )),
            _ => None,
        };
        cat.tables.push(Table {
            oid: g.u32(0)?,
            name: g.name(1)?,
            unlogged: g.bool(4)?,
            columns: Vec::new(),
            constraints: Vec::new(),
            partitioning,
            bound: g.opt(7),
            parent: g.opt_name(8)?,
            inherits: Vec::new(),
            estimated_rows: g.i64(11)?,
            size_bytes: g.i64(12)?,
            comment: g.opt(13),
            readable: g.bool(14)?,
            pages: g.i64(15)?,
            row_security: g.bool(16)?,
            of_type: g.opt(17),
        });
    }
    let index_of: HashMap<u32, usize> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.oid, i))
        .collect();

    for r in rows(conn, "inheritance", &format!(
        "SELECT i.inhrelid, pn.nspname, pc.relname, quote_ident(pn.nspname) || '.' || quote_ident(pc.relname)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE NOT c.relispartition AND c.relkind IN ('r', 'p') AND {SYSTEM}
         ORDER BY i.inhrelid, i.inhseqno")).await?
    {
        let g = Get(&r, "inheritance");
        if let Some(&i) = index_of.get(&g.u32(0)?) {
            cat.tables[i].inherits.push(g.name(1)?);
        }
    }

    for r in rows(conn, "columns", &format!(
        "SELECT a.attrelid, a.attname, quote_ident(a.attname), a.attnum, format_type(a.atttypid, a.atttypmod), a.atttypid,
                CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
                a.attnotnull, CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END, nullif(a.attidentity, ''),
                CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END, a.attislocal, col_description(a.attrelid, a.attnum),
                CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE format_type(a.atttypid, a.atttypmod) END,
                t.typtype = 'e' OR (t.typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_type et WHERE et.oid = t.typelem AND et.typtype = 'e')),
                (SELECT bool_and(x.typsend <> 0 AND x.typreceive <> 0 AND x.oid <> 'pg_catalog.tsquery'::pg_catalog.regtype) FROM pg_type x
                  WHERE x.oid IN (t.oid, t.typbasetype, t.typelem, (SELECT b.typelem FROM pg_type b WHERE b.oid = t.typbasetype))),
                coalesce((SELECT collisdeterministic FROM pg_collation WHERE oid = a.attcollation), true)
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
         WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {SYSTEM}
         ORDER BY a.attrelid, a.attnum")).await?
    {
        let g = Get(&r, "columns");
        let Some(&i) = index_of.get(&g.u32(0)?) else { continue };
        cat.tables[i].columns.push(Column {
            name: g.s(1)?,
            quoted: g.s(2)?,
            attnum: g.i64(3)? as i16,
            type_name: g.s(4)?,
            type_oid: g.u32(5)?,
            collation: g.opt(6),
            not_null: g.bool(7)?,
            default: g.opt(8),
            identity: g.opt(9).and_then(|s| s.chars().next()),
            generated: g.opt(10),
            is_local: g.bool(11)?,
            comment: g.opt(12),
            base_type_name: g.s(13)?,
            is_enum: g.bool(14)?,
            binary_io: g.bool(15)?,
            deterministic: g.bool(16)?,
        });
    }

    let cols = |arr: &str, rel: &str| {
        format!("(SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.ord) FROM unnest({arr}) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum)")
    };
    for r in rows(conn, "constraints", &format!(
        "SELECT c.conrelid, c.conname, quote_ident(c.conname), c.contype, pg_get_constraintdef(c.oid), c.conislocal, c.conparentid <> 0,
                ion.nspname, ic.relname, quote_ident(ion.nspname) || '.' || quote_ident(ic.relname),
                {}, rn.nspname, rc.relname, quote_ident(rn.nspname) || '.' || quote_ident(rc.relname), {}, c.convalidated
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         LEFT JOIN pg_class ic ON ic.oid = c.conindid AND c.contype IN ('p', 'u', 'x') LEFT JOIN pg_namespace ion ON ion.oid = ic.relnamespace
         LEFT JOIN pg_class rc ON rc.oid = c.confrelid AND c.contype = 'f' LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
         WHERE c.conrelid <> 0 AND c.contype IN ('p', 'u', 'c', 'f', 'x') AND {SYSTEM}
         ORDER BY c.conrelid, c.conname", cols("c.conkey", "c.conrelid"), cols("c.confkey", "c.confrelid"))).await?
    {
        let g = Get(&r, "constraints");
        let Some(&i) = index_of.get(&g.u32(0)?) else { continue };
        let kind = match g.s(3)?.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "c" => ConstraintKind::Check,
            "f" => ConstraintKind::ForeignKey,
            _ => ConstraintKind::Exclusion,
        };
        let references = g.opt_name(11)?.map(|t| (t, g.list(14)));
        cat.tables[i].constraints.push(Constraint {
            name: g.s(1)?,
            quoted: g.s(2)?,
            kind,
            definition: g.s(4)?,
            is_local: g.bool(5)?,
            inherited_from_parent: g.bool(6)?,
            index: g.opt_name(7)?,
            columns: g.list(10),
            references,
            validated: g.bool(15)?,
        });
    }
    Ok(())
}

async fn load_indexes(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    for r in rows(conn, "indexes", 
        "SELECT n.nspname, ic.relname, quote_ident(n.nspname) || '.' || quote_ident(ic.relname), tn.nspname, tc.relname, quote_ident(tn.nspname) || '.' || quote_ident(tc.relname),
                -- A constraint's index is made by its constraint: its definition is not
                -- needed, and deparsing costs (half the query at 20,000 keys).
                CASE WHEN con.conname IS NULL THEN pg_get_indexdef(i.indexrelid) ELSE '' END,
                con.conname,
                pn.nspname, pc.relname, quote_ident(pn.nspname) || '.' || quote_ident(pc.relname), i.indisunique,
                (SELECT string_agg(a.attname, E'\x1f' ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
                obj_description(ic.oid, 'pg_class'),
                (SELECT string_agg(a.attname, E'\x1f' ORDER BY a.attnum) FROM pg_depend d
                   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                     AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0)
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
         JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
         LEFT JOIN LATERAL (SELECT conname FROM pg_constraint WHERE conindid = i.indexrelid AND contype IN ('p', 'u', 'x') AND conrelid = i.indrelid LIMIT 1) con ON true
         LEFT JOIN pg_inherits inh ON inh.inhrelid = ic.oid LEFT JOIN pg_class pc ON pc.oid = inh.inhparent LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE tc.relkind IN ('r', 'p', 'm') AND tn.nspname NOT IN ('pg_catalog', 'information_schema') AND tn.nspname !~ '^pg_toast'
         ORDER BY n.nspname, ic.relname").await?
    {
        let g = Get(&r, "indexes");
        cat.indexes.push(Index {
            name: g.name(0)?,
            table: g.name(3)?,
            definition: g.s(6)?,
            constraint: g.opt(7),
            parent: g.opt_name(8)?,
            unique: g.bool(11)?,
            columns: g.list(12),
            comment: g.opt(13),
            uses_columns: g.list(14),
        });
    }
    Ok(())
}

/// Per-table settings and table-bound objects: storage parameters, column storage,
/// statistics targets, attribute options and compression, replica identity, `CLUSTER ON`,
/// row-level security with its policies, and rules.
async fn load_settings(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    const T: &str = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)";
    let opts = |arr: &str, prefix: &str| {
        format!("(SELECT string_agg('{prefix}' || split_part(o, '=', 1) || '=' || quote_literal(substr(o, strpos(o, '=') + 1)), ', ') FROM unnest({arr}) o)")
    };
    let sql = format!(
        "SELECT n.nspname, c.relname, {T}, 'w', 'storage parameters of ' || {T},
                'ALTER TABLE ONLY ' || {T} || ' SET (' || concat_ws(', ', {own}, (SELECT {toast} FROM pg_class tc WHERE tc.oid = c.reltoastrelid)) || ')', NULL
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND {SYSTEM}
           AND (c.reloptions IS NOT NULL OR (SELECT tc.reloptions FROM pg_class tc WHERE tc.oid = c.reltoastrelid) IS NOT NULL)
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'w', 'settings of column ' || quote_ident(a.attname) || ' of ' || {T},
                concat_ws('; ',
                  CASE WHEN a.attstattarget >= 0 THEN 'ALTER TABLE ONLY ' || {T} || ' ALTER COLUMN ' || quote_ident(a.attname) || ' SET STATISTICS ' || a.attstattarget END,
                  CASE WHEN a.attstorage <> t.typstorage THEN 'ALTER TABLE ONLY ' || {T} || ' ALTER COLUMN ' || quote_ident(a.attname) || ' SET STORAGE '
                       || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END,
                  CASE WHEN a.attoptions IS NOT NULL THEN 'ALTER TABLE ONLY ' || {T} || ' ALTER COLUMN ' || quote_ident(a.attname) || ' SET (' || {attopts} || ')' END,
                  CASE WHEN a.attcompression <> '' THEN 'ALTER TABLE ONLY ' || {T} || ' ALTER COLUMN ' || quote_ident(a.attname) || ' SET COMPRESSION '
                       || CASE a.attcompression WHEN 'l' THEN 'lz4' ELSE 'pglz' END END), NULL
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
         WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {SYSTEM}
           AND (a.attstattarget >= 0 OR a.attstorage <> t.typstorage OR a.attoptions IS NOT NULL OR a.attcompression <> '')
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'i', 'replica identity of ' || {T},
                'ALTER TABLE ONLY ' || {T} || ' REPLICA IDENTITY ' || CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
                  ELSE 'USING INDEX ' || (SELECT quote_ident(ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident) END, NULL
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND c.relreplident <> 'd' AND {SYSTEM}
           AND (c.relreplident <> 'i' OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'i', 'clustering of ' || {T},
                'ALTER TABLE ONLY ' || {T} || ' CLUSTER ON ' || quote_ident(ic.relname), NULL
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE i.indisclustered AND c.relkind IN ('r', 'm') AND {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'policy ' || quote_ident(p.polname) || ' on ' || {T},
                'CREATE POLICY ' || quote_ident(p.polname) || ' ON ' || {T}
                || CASE WHEN p.polpermissive THEN '' ELSE ' AS RESTRICTIVE' END
                || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
                || ' TO ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ') FROM unnest(p.polroles) r)
                || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
                || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
                || coalesce('; COMMENT ON POLICY ' || quote_ident(p.polname) || ' ON ' || {T} || ' IS ' || quote_literal(obj_description(p.oid, 'pg_policy')), ''),
                'DROP POLICY IF EXISTS ' || quote_ident(p.polname) || ' ON ' || {T}
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'row-level security of ' || {T},
                'ALTER TABLE ONLY ' || {T} || ' ENABLE ROW LEVEL SECURITY' || CASE WHEN c.relforcerowsecurity THEN '; ALTER TABLE ONLY ' || {T} || ' FORCE ROW LEVEL SECURITY' ELSE '' END,
                'ALTER TABLE ONLY ' || {T} || ' NO FORCE ROW LEVEL SECURITY; ALTER TABLE ONLY ' || {T} || ' DISABLE ROW LEVEL SECURITY'
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND (c.relrowsecurity OR c.relforcerowsecurity) AND {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'rule ' || quote_ident(r.rulename) || ' on ' || {T},
                rtrim(pg_get_ruledef(r.oid), ';')
                || CASE r.ev_enabled WHEN 'D' THEN '; ALTER TABLE ' || {T} || ' DISABLE RULE ' || quote_ident(r.rulename)
                                     WHEN 'R' THEN '; ALTER TABLE ' || {T} || ' ENABLE REPLICA RULE ' || quote_ident(r.rulename)
                                     WHEN 'A' THEN '; ALTER TABLE ' || {T} || ' ENABLE ALWAYS RULE ' || quote_ident(r.rulename) ELSE '' END,
                'DROP RULE IF EXISTS ' || quote_ident(r.rulename) || ' ON ' || {T}
         FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE r.rulename <> '_RETURN' AND c.relkind IN ('r', 'p', 'v', 'm') AND {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'i', 'statistics ' || quote_ident(sn.nspname) || '.' || quote_ident(x.stxname),
                pg_get_statisticsobjdef(x.oid)
                || CASE WHEN x.stxstattarget >= 0 THEN '; ALTER STATISTICS ' || quote_ident(sn.nspname) || '.' || quote_ident(x.stxname) || ' SET STATISTICS ' || x.stxstattarget ELSE '' END
                || coalesce('; COMMENT ON STATISTICS ' || quote_ident(sn.nspname) || '.' || quote_ident(x.stxname) || ' IS ' || quote_literal(obj_description(x.oid, 'pg_statistic_ext')), ''), NULL
         FROM pg_statistic_ext x JOIN pg_namespace sn ON sn.oid = x.stxnamespace
         JOIN pg_class c ON c.oid = x.stxrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'comment on constraint ' || quote_ident(k.conname) || ' on ' || {T},
                'COMMENT ON CONSTRAINT ' || quote_ident(k.conname) || ' ON ' || {T} || ' IS ' || quote_literal(obj_description(k.oid, 'pg_constraint')), NULL
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE obj_description(k.oid, 'pg_constraint') IS NOT NULL AND {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'comment on rule ' || quote_ident(r.rulename) || ' on ' || {T},
                'COMMENT ON RULE ' || quote_ident(r.rulename) || ' ON ' || {T} || ' IS ' || quote_literal(obj_description(r.oid, 'pg_rewrite')), NULL
         FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE r.rulename <> '_RETURN' AND obj_description(r.oid, 'pg_rewrite') IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm') AND {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'i', 'statistics target of index ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname),
                string_agg('ALTER INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname) || ' ALTER COLUMN ' || a.attnum || ' SET STATISTICS ' || a.attstattarget, '; ' ORDER BY a.attnum), NULL
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_attribute a ON a.attrelid = ic.oid
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.attstattarget >= 0 AND c.relkind IN ('r', 'p') AND {SYSTEM}
         GROUP BY n.nspname, c.relname, ic.relname
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'state of trigger ' || quote_ident(t.tgname) || ' on ' || {T},
                'ALTER TABLE ' || {T} || CASE t.tgenabled WHEN 'D' THEN ' DISABLE' WHEN 'R' THEN ' ENABLE REPLICA' WHEN 'A' THEN ' ENABLE ALWAYS' ELSE ' ENABLE' END
                  || ' TRIGGER ' || quote_ident(t.tgname), NULL
         FROM pg_trigger t JOIN pg_trigger pt ON pt.oid = t.tgparentid JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE t.tgenabled <> pt.tgenabled AND {SYSTEM}
         UNION ALL
         SELECT n.nspname, c.relname, {T}, 'a', 'comment on trigger ' || quote_ident(t.tgname) || ' on ' || {T},
                'COMMENT ON TRIGGER ' || quote_ident(t.tgname) || ' ON ' || {T} || ' IS ' || quote_literal(obj_description(t.oid, 'pg_trigger')), NULL
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NOT NULL AND {SYSTEM}",
        own = opts("c.reloptions", ""),
        toast = opts("tc.reloptions", "toast."),
        attopts = opts("a.attoptions", ""),
    );
    for r in rows(conn, "table settings", &sql).await? {
        let g = Get(&r, "table settings");
        cat.settings.push(TableSetting {
            table: g.name(0)?,
            stage: match g.s(3)?.as_str() {
                "w" => SettingStage::WithTable,
                "i" => SettingStage::WithIndexes,
                _ => SettingStage::AfterRows,
            },
            object: g.s(4)?,
            sql: g.s(5)?,
            undo: g.opt(6),
        });
    }
    Ok(())
}

fn apply_filter(cat: &mut Catalog, f: &Filter) {
    if *f == Filter::default() {
        return;
    }
    cat.schemas.retain(|s| f.takes_schema(&s.name));
    cat.types.retain(|t| f.takes_schema(&t.name.schema));
    for t in &cat.tables {
        let why = if !f.takes_schema(&t.name.schema) {
            "its schema is left out by --include-schema/--exclude-schema"
        } else if !f.takes_table(&t.name.schema, &t.name.name) {
            "it is excluded by --exclude-table"
        } else {
            continue;
        };
        cat.excluded
            .insert((t.name.schema.clone(), t.name.name.clone()), why);
    }
    cat.tables
        .retain(|t| f.takes_table(&t.name.schema, &t.name.name));
    cat.table_index = TableIndex::default();
    let tables: std::collections::HashSet<QualifiedName> =
        cat.tables.iter().map(|t| t.name.clone()).collect();
    cat.sequences.retain(|s| {
        f.takes_schema(&s.name.schema)
            && s.owned_by.as_ref().is_none_or(|(t, _)| tables.contains(t))
    });
    cat.indexes.retain(|i| {
        tables.contains(&i.table)
            || (f.takes_schema(&i.table.schema) && cat.views.iter().any(|v| v.name == i.table))
    });
    cat.views.retain(|v| f.takes_schema(&v.name.schema));
    // As pg_dump: a dump of chosen schemas leaves large objects out.
    if !f.include_schemas.is_empty() {
        cat.large_objects.clear();
    }
    cat.publications
        .retain(|p| p.tables.iter().any(|(t, _)| tables.contains(t)));
    let large_objects = !cat.large_objects.is_empty();
    cat.grants.retain(|g| match &g.schema {
        Some(s) => f.takes_schema(s),
        None => {
            g.object.starts_with("LARGE OBJECT") && large_objects
                || g.object == "default privileges"
        }
    });
    cat.functions.retain(|p| f.takes_schema(&p.name.schema));
    cat.triggers
        .retain(|t| tables.contains(&t.table) || cat.views.iter().any(|v| v.name == t.table));
}
