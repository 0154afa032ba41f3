//! Privileges (`--privileges`): the grants on schemas, tables, columns, sequences, views,
//! functions, types and large objects, and the default privileges, as GRANT, REVOKE and
//! ALTER DEFAULT PRIVILEGES statements. What an object's owner holds on it is not repeated:
//! on the target the objects belong to the cloning role. A grant to PUBLIC that the source
//! took away (functions' EXECUTE, types' USAGE) is taken away on the target too.

use super::queries::{not_extension_member, rows, Get, SYSTEM};
use super::*;

/// One statement that grants or revokes, with the role it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The object's schema (none for large objects and database-wide default privileges).
    pub schema: Option<String>,
    /// For messages: `TABLE "app"."accounts"`.
    pub object: String,
    /// The role granted to (none for PUBLIC), which must exist on the target.
    pub grantee: Option<String>,
    /// `ALTER DEFAULT PRIVILEGES FOR ROLE`: the role whose future objects it concerns, when
    /// it is not the reading role (whose defaults become the target role's).
    pub for_role: Option<String>,
    pub sql: String,
}

/// Reads every grant and default privilege on the objects a clone creates.
pub async fn load(conn: &mut Connection, cat: &mut Catalog) -> Result<(), Error> {
    let grantee =
        "CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END";
    let sql = format!(
        "WITH objs AS (
           SELECT n.nspname AS schema, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
                  quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, c.relacl AS acl, c.relowner AS owner,
                  CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END AS defkind
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND {SYSTEM} AND {rel}
           UNION ALL
           SELECT n.nspname, 'SCHEMA', quote_ident(n.nspname), n.nspacl, n.nspowner, 'n'
           FROM pg_namespace n WHERE {SYSTEM} AND {nsp}
           UNION ALL
           SELECT n.nspname, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                  quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                  p.proacl, p.proowner, 'f'
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {SYSTEM} AND {pro}
           UNION ALL
           SELECT n.nspname, 'TYPE', quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typacl, t.typowner, 'T'
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE t.typtype IN ('e', 'd', 'c', 'r') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
             AND {SYSTEM} AND {typ}
           UNION ALL
           SELECT NULL, 'LARGE OBJECT', m.oid::text, m.lomacl, m.lomowner, 'L' FROM pg_largeobject_metadata m
         )
         SELECT o.schema, o.kind || ' ' || o.name, CASE WHEN e.grantee <> 0 THEN pg_get_userbyid(e.grantee) END,
                'GRANT ' || e.privilege_type || ' ON ' || o.kind || ' ' || o.name || ' TO ' || {grantee}
                || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, e.ordinality
         FROM objs o, aclexplode(o.acl) WITH ORDINALITY e WHERE o.acl IS NOT NULL AND e.grantee <> o.owner
         UNION ALL
         SELECT o.schema, o.kind || ' ' || o.name, NULL, 'REVOKE ' || d.privilege_type || ' ON ' || o.kind || ' ' || o.name || ' FROM PUBLIC', 0
         FROM objs o, aclexplode(acldefault(o.defkind::\"char\", o.owner)) d
         WHERE o.acl IS NOT NULL AND d.grantee = 0
           AND NOT EXISTS (SELECT 1 FROM aclexplode(o.acl) x WHERE x.grantee = 0 AND x.privilege_type = d.privilege_type)
         UNION ALL
         SELECT n.nspname, 'COLUMN ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
                CASE WHEN e.grantee <> 0 THEN pg_get_userbyid(e.grantee) END,
                'GRANT ' || e.privilege_type || ' (' || quote_ident(a.attname) || ') ON TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                || ' TO ' || {grantee} || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, e.ordinality
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(a.attacl) WITH ORDINALITY e
         WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND e.grantee <> c.relowner
           AND c.relkind IN ('r', 'p', 'v', 'm') AND {SYSTEM}
         ORDER BY 1, 2, 5, 4",
        rel = not_extension_member("pg_class", "c.oid"),
        nsp = not_extension_member("pg_namespace", "n.oid"),
        pro = not_extension_member("pg_proc", "p.oid"),
        typ = not_extension_member("pg_type", "t.oid"),
    );
    for r in rows(conn, "privileges", &sql).await? {
        let g = Get(&r, "privileges");
        cat.grants.push(Grant {
            schema: g.opt(0),
            object: g.s(1)?,
            grantee: g.opt(2),
            for_role: None,
            sql: g.s(3)?,
        });
    }

    // Default privileges. Those of the reading role become the target role's (no FOR ROLE);
    // database-wide ones that took a default grant away are taken away too.
    let kinds = "CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END";
    let head = "'ALTER DEFAULT PRIVILEGES' || CASE WHEN d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN '' ELSE ' FOR ROLE ' || quote_ident(pg_get_userbyid(d.defaclrole)) END || coalesce(' IN SCHEMA ' || quote_ident(n.nspname), '')";
    let sql = format!(
        "SELECT n.nspname, CASE WHEN d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN NULL ELSE pg_get_userbyid(d.defaclrole) END,
                CASE WHEN e.grantee <> 0 THEN pg_get_userbyid(e.grantee) END,
                {head} || ' GRANT ' || e.privilege_type || ' ON ' || {kinds} || ' TO ' || {grantee}
                || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) e
         WHERE e.grantee <> d.defaclrole
         UNION ALL
         SELECT NULL, CASE WHEN d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN NULL ELSE pg_get_userbyid(d.defaclrole) END,
                NULL, {head} || ' REVOKE ' || x.privilege_type || ' ON ' || {kinds} || ' FROM PUBLIC'
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
              aclexplode(acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)) x
         WHERE d.defaclnamespace = 0 AND x.grantee = 0
           AND NOT EXISTS (SELECT 1 FROM aclexplode(d.defaclacl) y WHERE y.grantee = 0 AND y.privilege_type = x.privilege_type)
         ORDER BY 1, 2, 4"
    );
    for r in rows(conn, "default privileges", &sql).await? {
        let g = Get(&r, "default privileges");
        cat.grants.push(Grant {
            schema: g.opt(0),
            object: "default privileges".into(),
            for_role: g.opt(1),
            grantee: g.opt(2),
            sql: g.s(3)?,
        });
    }
    Ok(())
}
