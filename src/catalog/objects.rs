//! Standalone objects created from one statement block each, ordered with the rest by their
//! dependencies: collations, text search dictionaries and configurations, casts, conversions,
//! operators, operator families and classes. Publications and large objects are read here
//! too (they come after the rows). Statements are written the way pg_dump writes them, with
//! every name qualified (the catalog is read with an empty search path).

use std::collections::HashMap;

use super::queries::{not_extension_member, rows, Get, SYSTEM};
use super::*;

/// The kind of a standalone object, in the order pg_dump ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Collation,
    Cast,
    Operator,
    OperatorFamily,
    OperatorClass,
    Conversion,
    TextSearchDictionary,
    TextSearchConfiguration,
}

impl ObjectKind {
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Collation => "collation",
            ObjectKind::Cast => "cast",
            ObjectKind::Operator => "operator",
            ObjectKind::OperatorFamily => "operator family",
            ObjectKind::OperatorClass => "operator class",
            ObjectKind::Conversion => "conversion",
            ObjectKind::TextSearchDictionary => "text search dictionary",
            ObjectKind::TextSearchConfiguration => "text search configuration",
        }
    }

    /// The letter `pg_depend` rows of this kind's catalog are known by (see `deps`).
    pub fn class(self) -> char {
        match self {
            ObjectKind::Collation => 'l',
            ObjectKind::Cast => 's',
            ObjectKind::Operator => 'o',
            ObjectKind::OperatorFamily => 'f',
            ObjectKind::OperatorClass => 'q',
            ObjectKind::Conversion => 'v',
            ObjectKind::TextSearchDictionary => 'h',
            ObjectKind::TextSearchConfiguration => 'g',
        }
    }
}

/// One standalone object and the statements that create it (comment included).
#[derive(Debug, Clone, PartialEq)]
pub struct PlainObject {
    pub kind: ObjectKind,
    pub oid: u32,
    /// Its schema (none for casts, which belong to the database).
    pub schema: Option<String>,
    /// For messages: `app.german`, `(app.money AS numeric)`.
    pub name: String,
    pub sql: String,
    /// Objects it needs that `pg_depend` does not link to it (an operator class's members).
    pub needs: Vec<ObjRef>,
    /// Why only a superuser can create it, if so (checked against the target role).
    pub superuser_only: Option<&'static str>,
}

impl PlainObject {
    pub fn key(&self) -> ObjRef {
        ObjRef::Object(self.kind.class(), self.oid)
    }
}

/// A publication that names tables: created after the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub name: String,
    /// `CREATE PUBLICATION`, then one `ALTER PUBLICATION ... ADD TABLE` per table.
    pub create: String,
    /// (table, statement adding it).
    pub tables: Vec<(QualifiedName, String)>,
    pub comment: Option<String>,
}

/// One large object: its OID and comment (contents are streamed by the engine; the
/// catalog that holds them, pg_largeobject, is not readable by ordinary roles).
#[derive(Debug, Clone, PartialEq)]
pub struct LargeObject {
    pub oid: u32,
    pub comment: Option<String>,
    /// The reading role may read its contents (owner, granted SELECT, or superuser).
    pub readable: bool,
}

fn comment_sql(what: &str, name: &str, comment: Option<String>) -> String {
    comment
        .map(|c| format!(";\nCOMMENT ON {what} {name} IS {}", quote_literal(&c)))
        .unwrap_or_default()
}

/// Reads every standalone object `filter` takes into `cat.objects`, with publications and
/// large objects.
pub async fn load(conn: &mut Connection, cat: &mut Catalog, filter: &Filter) -> Result<(), Error> {
    let member = |class: &str, oid: &str| {
        not_extension_member(class, oid).replace("deptype = 'e'", "deptype IN ('e', 'i')")
    };
    let mut out: Vec<PlainObject> = Vec::new();

    // Collations: provider, locale(s), determinism. The ICU locale column was renamed in 17.
    for r in rows(conn, "collations", &format!(
        "SELECT c.oid, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.collname), c.collprovider, c.collisdeterministic,
                c.collcollate, c.collctype, coalesce(to_jsonb(c) ->> 'colllocale', to_jsonb(c) ->> 'colliculocale'),
                to_jsonb(c) ->> 'collicurules', obj_description(c.oid, 'pg_collation')
         FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
         WHERE {SYSTEM} AND {} ORDER BY c.oid", member("pg_collation", "c.oid"))).await?
    {
        let g = Get(&r, "collations");
        let name = g.s(2)?;
        let mut opts = Vec::new();
        match g.s(3)?.as_str() {
            "i" => {
                opts.push("provider = icu".to_string());
                opts.push(format!("locale = {}", quote_literal(&g.opt(7).unwrap_or_default())));
                if let Some(rules) = g.opt(8) {
                    opts.push(format!("rules = {}", quote_literal(&rules)));
                }
            }
            _ => {
                opts.push("provider = libc".to_string());
                let (collate, ctype) = (g.opt(5).unwrap_or_default(), g.opt(6).unwrap_or_default());
                if collate == ctype {
                    opts.push(format!("locale = {}", quote_literal(&collate)));
                } else {
                    opts.push(format!("lc_collate = {}", quote_literal(&collate)));
                    opts.push(format!("lc_ctype = {}", quote_literal(&ctype)));
                }
            }
        }
        if !g.bool(4)? {
            opts.push("deterministic = false".into());
        }
        let sql = format!("CREATE COLLATION {name} ({}){}", opts.join(", "), comment_sql("COLLATION", &name, g.opt(9)));
        out.push(PlainObject { kind: ObjectKind::Collation, oid: g.u32(0)?, schema: Some(g.s(1)?), name, sql, needs: vec![], superuser_only: None });
    }

    // Text search dictionaries on existing templates, with their options as written.
    for r in rows(conn, "text search dictionaries", &format!(
        "SELECT td.oid, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(td.dictname),
                quote_ident(tn.nspname) || '.' || quote_ident(t.tmplname), td.dictinitoption, obj_description(td.oid, 'pg_ts_dict')
         FROM pg_ts_dict td JOIN pg_namespace n ON n.oid = td.dictnamespace
         JOIN pg_ts_template t ON t.oid = td.dicttemplate JOIN pg_namespace tn ON tn.oid = t.tmplnamespace
         WHERE {SYSTEM} AND {} ORDER BY td.oid", member("pg_ts_dict", "td.oid"))).await?
    {
        let g = Get(&r, "text search dictionaries");
        let name = g.s(2)?;
        let options = g.opt(4).map(|o| format!(", {o}")).unwrap_or_default();
        let sql = format!("CREATE TEXT SEARCH DICTIONARY {name} (TEMPLATE = {}{options}){}", g.s(3)?, comment_sql("TEXT SEARCH DICTIONARY", &name, g.opt(5)));
        out.push(PlainObject { kind: ObjectKind::TextSearchDictionary, oid: g.u32(0)?, schema: Some(g.s(1)?), name, sql, needs: vec![], superuser_only: None });
    }

    // Text search configurations: the parser, then the mappings token type by token type
    // (the default ones a COPY = would bring are not assumed).
    for r in rows(conn, "text search configurations", &format!(
        "SELECT c.oid, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.cfgname),
                quote_ident(pn.nspname) || '.' || quote_ident(p.prsname),
                (SELECT string_agg('ALTER TEXT SEARCH CONFIGURATION ' || quote_ident(n.nspname) || '.' || quote_ident(c.cfgname)
                                   || ' ADD MAPPING FOR ' || quote_ident(x.token) || ' WITH ' || x.dicts, E';\\n' ORDER BY x.tokid)
                   FROM (SELECT m.maptokentype AS tokid,
                                (SELECT t.alias FROM ts_token_type(c.cfgparser) t WHERE t.tokid = m.maptokentype) AS token,
                                string_agg(m.mapdict::regdictionary::text, ', ' ORDER BY m.mapseqno) AS dicts
                         FROM pg_ts_config_map m WHERE m.mapcfg = c.oid GROUP BY m.maptokentype) x),
                obj_description(c.oid, 'pg_ts_config')
         FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
         JOIN pg_ts_parser p ON p.oid = c.cfgparser JOIN pg_namespace pn ON pn.oid = p.prsnamespace
         WHERE {SYSTEM} AND {} ORDER BY c.oid", member("pg_ts_config", "c.oid"))).await?
    {
        let g = Get(&r, "text search configurations");
        let name = g.s(2)?;
        let mappings = g.opt(4).map(|m| format!(";\n{m}")).unwrap_or_default();
        let sql = format!("CREATE TEXT SEARCH CONFIGURATION {name} (PARSER = {}){mappings}{}", g.s(3)?, comment_sql("TEXT SEARCH CONFIGURATION", &name, g.opt(5)));
        out.push(PlainObject { kind: ObjectKind::TextSearchConfiguration, oid: g.u32(0)?, schema: Some(g.s(1)?), name, sql, needs: vec![], superuser_only: None });
    }

    // Casts between types where one is the database's own (or through its function).
    for r in rows(conn, "casts", &format!(
        "SELECT c.oid, format('(%s AS %s)', format_type(c.castsource, NULL), format_type(c.casttarget, NULL)),
                c.castmethod, CASE WHEN c.castfunc <> 0 THEN c.castfunc::regprocedure::text END, c.castcontext,
                obj_description(c.oid, 'pg_cast'), c.castsource < 16384 AND c.casttarget < 16384
         FROM pg_cast c WHERE c.oid >= 16384 AND {} ORDER BY c.oid", member("pg_cast", "c.oid"))).await?
    {
        let g = Get(&r, "casts");
        let name = g.s(1)?;
        let method = g.s(2)?;
        let how = match (method.as_str(), g.opt(3)) {
            ("f", Some(f)) => format!("WITH FUNCTION {f}"),
            ("i", _) => "WITH INOUT".into(),
            _ => "WITHOUT FUNCTION".into(),
        };
        let context = match g.s(4)?.as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        let sql = format!("CREATE CAST {name} {how}{context}{}", comment_sql("CAST", &name, g.opt(5)));
        let superuser_only = if method == "b" {
            Some("a cast without a function (binary coercible) needs a superuser")
        } else if g.bool(6)? {
            Some("a cast between built-in types needs a superuser (or the owner of one of the types)")
        } else {
            None
        };
        out.push(PlainObject { kind: ObjectKind::Cast, oid: g.u32(0)?, schema: None, name, sql, needs: vec![], superuser_only });
    }

    // Conversions (their functions are the server's own or an extension's).
    for r in rows(conn, "conversions", &format!(
        "SELECT c.oid, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.conname), c.condefault,
                pg_encoding_to_char(c.conforencoding), pg_encoding_to_char(c.contoencoding), c.conproc::regproc::text,
                obj_description(c.oid, 'pg_conversion')
         FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE {SYSTEM} AND {} ORDER BY c.oid", member("pg_conversion", "c.oid"))).await?
    {
        let g = Get(&r, "conversions");
        let name = g.s(2)?;
        let sql = format!(
            "CREATE {}CONVERSION {name} FOR {} TO {} FROM {}{}",
            if g.bool(3)? { "DEFAULT " } else { "" },
            quote_literal(&g.s(4)?),
            quote_literal(&g.s(5)?),
            g.s(6)?,
            comment_sql("CONVERSION", &name, g.opt(7))
        );
        out.push(PlainObject { kind: ObjectKind::Conversion, oid: g.u32(0)?, schema: Some(g.s(1)?), name, sql, needs: vec![], superuser_only: None });
    }

    // Operators: function, operand types, commutator and negator (by name: a later one is
    // made a shell, then filled), selectivity estimators, hash and merge support.
    let opref = |col: &str| {
        format!("CASE WHEN o.{col} <> 0 THEN (SELECT 'OPERATOR(' || quote_ident(xn.nspname) || '.' || x.oprname || ')' FROM pg_operator x JOIN pg_namespace xn ON xn.oid = x.oprnamespace WHERE x.oid = o.{col}) END")
    };
    for r in rows(conn, "operators", &format!(
        "SELECT o.oid, n.nspname, quote_ident(n.nspname) || '.' || o.oprname, o.oid::regoperator::text,
                o.oprcode::regproc::text, CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END,
                CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END, {commutator}, {negator},
                CASE WHEN o.oprrest <> 0 THEN o.oprrest::regproc::text END, CASE WHEN o.oprjoin <> 0 THEN o.oprjoin::regproc::text END,
                o.oprcanhash, o.oprcanmerge, obj_description(o.oid, 'pg_operator')
         FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
         WHERE {SYSTEM} AND o.oprcode <> 0 AND {} ORDER BY o.oid", member("pg_operator", "o.oid"),
        commutator = opref("oprcom"), negator = opref("oprnegate"))).await?
    {
        let g = Get(&r, "operators");
        let mut opts = vec![format!("FUNCTION = {}", g.s(4)?)];
        if let Some(t) = g.opt(5) {
            opts.push(format!("LEFTARG = {t}"));
        }
        if let Some(t) = g.opt(6) {
            opts.push(format!("RIGHTARG = {t}"));
        }
        for (i, what) in [(7, "COMMUTATOR"), (8, "NEGATOR"), (9, "RESTRICT"), (10, "JOIN")] {
            if let Some(v) = g.opt(i) {
                opts.push(format!("{what} = {v}"));
            }
        }
        if g.bool(11)? {
            opts.push("HASHES".into());
        }
        if g.bool(12)? {
            opts.push("MERGES".into());
        }
        let signature = g.s(3)?;
        let sql = format!("CREATE OPERATOR {} ({}){}", g.s(2)?, opts.join(", "), comment_sql("OPERATOR", &signature, g.opt(13)));
        out.push(PlainObject { kind: ObjectKind::Operator, oid: g.u32(0)?, schema: Some(g.s(1)?), name: signature, sql, needs: vec![], superuser_only: None });
    }

    // Members of operator families and classes: what each needs, and how it is written.
    // A member belongs to its class (internal dependency) or loosely to its family.
    let mut members: HashMap<(char, u32), (Vec<String>, Vec<ObjRef>)> = HashMap::new();
    for r in rows(conn, "operator family members",
        "SELECT CASE WHEN d.refclassid = 'pg_opclass'::regclass THEN 'q' ELSE 'f' END, d.refobjid,
                'OPERATOR ' || a.amopstrategy || ' ' || a.amopopr::regoperator::text
                  || CASE WHEN a.amoppurpose = 'o' THEN ' FOR ORDER BY ' || (SELECT quote_ident(fn.nspname) || '.' || quote_ident(f.opfname) FROM pg_opfamily f JOIN pg_namespace fn ON fn.oid = f.opfnamespace WHERE f.oid = a.amopsortfamily) ELSE '' END,
                'o', a.amopopr
         FROM pg_amop a JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = a.oid
              AND d.refclassid IN ('pg_opclass'::regclass, 'pg_opfamily'::regclass) AND d.deptype IN ('i', 'a')
         WHERE a.oid >= 16384
         UNION ALL
         SELECT CASE WHEN d.refclassid = 'pg_opclass'::regclass THEN 'q' ELSE 'f' END, d.refobjid,
                'FUNCTION ' || p.amprocnum || ' (' || format_type(p.amproclefttype, NULL) || ', ' || format_type(p.amprocrighttype, NULL) || ') '
                  || p.amproc::regprocedure::text,
                'p', p.amproc
         FROM pg_amproc p JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = p.oid
              AND d.refclassid IN ('pg_opclass'::regclass, 'pg_opfamily'::regclass) AND d.deptype IN ('i', 'a')
         WHERE p.oid >= 16384
         ORDER BY 1, 2, 3").await?
    {
        let g = Get(&r, "operator family members");
        let owner = (g.s(0)?.chars().next().unwrap_or('f'), g.u32(1)?);
        let need = match g.s(3)?.as_str() {
            "o" => ObjRef::Object('o', g.u32(4)?),
            _ => ObjRef::Function(g.u32(4)?),
        };
        let entry = members.entry(owner).or_default();
        entry.0.push(g.s(2)?);
        entry.1.push(need);
    }
    const OPCLASS_SUPERUSER: &str = "operator classes and families need a superuser";
    for r in rows(conn, "operator families", &format!(
        "SELECT f.oid, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(f.opfname), quote_ident(am.amname),
                obj_description(f.oid, 'pg_opfamily')
         FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod
         WHERE {SYSTEM} AND {} ORDER BY f.oid", member("pg_opfamily", "f.oid"))).await?
    {
        let g = Get(&r, "operator families");
        let (oid, name, am) = (g.u32(0)?, g.s(2)?, g.s(3)?);
        let (loose, needs) = members.remove(&('f', oid)).unwrap_or_default();
        let mut sql = format!("CREATE OPERATOR FAMILY {name} USING {am}");
        if !loose.is_empty() {
            sql += &format!(";\nALTER OPERATOR FAMILY {name} USING {am} ADD\n    {}", loose.join(",\n    "));
        }
        sql += &comment_sql("OPERATOR FAMILY", &format!("{name} USING {am}"), g.opt(4));
        out.push(PlainObject { kind: ObjectKind::OperatorFamily, oid, schema: Some(g.s(1)?), name, sql, needs, superuser_only: Some(OPCLASS_SUPERUSER) });
    }
    for r in rows(conn, "operator classes", &format!(
        "SELECT c.oid, n.nspname, quote_ident(n.nspname) || '.' || quote_ident(c.opcname), quote_ident(am.amname), c.opcdefault,
                format_type(c.opcintype, NULL), quote_ident(fn.nspname) || '.' || quote_ident(f.opfname), c.opcfamily,
                CASE WHEN c.opckeytype <> 0 THEN format_type(c.opckeytype, NULL) END, obj_description(c.oid, 'pg_opclass')
         FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am am ON am.oid = c.opcmethod
         JOIN pg_opfamily f ON f.oid = c.opcfamily JOIN pg_namespace fn ON fn.oid = f.opfnamespace
         WHERE {SYSTEM} AND {} ORDER BY c.oid", member("pg_opclass", "c.oid"))).await?
    {
        let g = Get(&r, "operator classes");
        let (oid, name, am) = (g.u32(0)?, g.s(2)?, g.s(3)?);
        let (mut items, mut needs) = members.remove(&('q', oid)).unwrap_or_default();
        if let Some(storage) = g.opt(8) {
            items.push(format!("STORAGE {storage}"));
        }
        needs.push(ObjRef::Object('f', g.u32(7)?));
        let sql = format!(
            "CREATE OPERATOR CLASS {name}{} FOR TYPE {} USING {am} FAMILY {} AS\n    {}{}",
            if g.bool(4)? { " DEFAULT" } else { "" },
            g.s(5)?,
            g.s(6)?,
            items.join(",\n    "),
            comment_sql("OPERATOR CLASS", &format!("{name} USING {am}"), g.opt(9))
        );
        out.push(PlainObject { kind: ObjectKind::OperatorClass, oid, schema: Some(g.s(1)?), name, sql, needs, superuser_only: Some(OPCLASS_SUPERUSER) });
    }
    out.retain(|o| o.schema.as_ref().is_none_or(|s| filter.takes_schema(s)));
    cat.objects = out;

    load_publications(conn, cat).await?;
    for r in rows(conn, "large objects",
        "SELECT m.oid, obj_description(m.oid, 'pg_largeobject'),
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR current_setting('lo_compat_privileges')::bool
                OR pg_has_role(m.lomowner, 'USAGE')
                OR EXISTS (SELECT 1 FROM aclexplode(m.lomacl) a WHERE a.privilege_type = 'SELECT' AND (a.grantee = 0 OR pg_has_role(a.grantee, 'USAGE')))
         FROM pg_largeobject_metadata m ORDER BY m.oid").await?
    {
        let g = Get(&r, "large objects");
        cat.large_objects.push(LargeObject { oid: g.u32(0)?, comment: g.opt(1), readable: g.bool(2)? });
    }
    Ok(())
}

/// Publications that name tables (with their column lists and row filters) or schemas.
async fn load_publications(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    let mut tables: HashMap<u32, Vec<(QualifiedName, String)>> = HashMap::new();
    for r in rows(conn, "publication tables",
        "SELECT r.prpubid, n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                'ALTER PUBLICATION ' || quote_ident(p.pubname) || ' ADD TABLE ONLY ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                || coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(r.prattrs::int2[]) WITH ORDINALITY k(attnum, ord)
                                     JOIN pg_attribute a ON a.attrelid = r.prrelid AND a.attnum = k.attnum) || ')', '')
                || coalesce(' WHERE (' || pg_get_expr(r.prqual, r.prrelid) || ')', '')
         FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
         JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         ORDER BY r.prpubid, n.nspname, c.relname").await?
    {
        let g = Get(&r, "publication tables");
        tables.entry(g.u32(0)?).or_default().push((g.name(1)?, g.s(4)?));
    }
    for r in rows(conn, "publications",
        "SELECT p.oid, p.pubname, quote_ident(p.pubname), p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,
                p.pubviaroot, obj_description(p.oid, 'pg_publication'),
                EXISTS (SELECT 1 FROM pg_publication_namespace s WHERE s.pnpubid = p.oid)
         FROM pg_publication p ORDER BY p.pubname").await?
    {
        let g = Get(&r, "publications");
        let quoted = g.s(2)?;
        if g.bool(3)? || g.bool(10)? {
            cat.unsupported.push(("publication".into(), quoted, "a publication FOR ALL TABLES or FOR TABLES IN SCHEMA needs a superuser".into()));
            continue;
        }
        let publish: Vec<&str> = [(4, "insert"), (5, "update"), (6, "delete"), (7, "truncate")]
            .into_iter()
            .filter(|(i, _)| g.bool(*i).unwrap_or(false))
            .map(|(_, w)| w)
            .collect();
        let create = format!(
            "CREATE PUBLICATION {quoted} WITH (publish = {}{})",
            quote_literal(&publish.join(", ")),
            if g.bool(8)? { ", publish_via_partition_root = true" } else { "" }
        );
        cat.publications.push(Publication { name: quoted, create, tables: tables.remove(&g.u32(0)?).unwrap_or_default(), comment: g.opt(9) });
    }
    Ok(())
}
