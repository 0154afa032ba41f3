//! Connecting to real PostgreSQL clusters: each authentication method, each sslmode, channel
//! binding, .pgpass, failures a user meets, simple queries and cancellation. Every role used
//! to connect is a non-superuser, as on managed services.

mod support;

use std::io::Write;
use std::time::Duration;

use privaci::auth::AuthMethod;
use privaci::conn::{connect, Connection};
use privaci::conninfo::Config;
use privaci::tls::Verification;
use privaci::ErrorKind;
use support::Cluster;

/// One cluster with a role per authentication method, TLS-only and plaintext-only roles,
/// a certificate-authenticated role, and a database owned by a non-superuser.
fn standard_cluster() -> Cluster {
    let mut b = Cluster::builder().hba("local all all scram-sha-256");
    for net in ["127.0.0.1/32", "::1/128"] {
        for line in [
            "hostssl all tls_only NET scram-sha-256",
            "hostnossl all plain_only NET scram-sha-256",
            "hostssl all cert_user NET cert",
            "host all scram_user NET scram-sha-256",
            "host all md5_user NET md5",
            "host all pw_user NET password",
            "host all trust_user NET trust",
            "host all app NET scram-sha-256",
        ] {
            b = b.hba(&line.replace("NET", net));
        }
    }
    let c = b.start();
    c.create_role("scram_user", Some("scram-secret"), false);
    c.create_role("md5_user", Some("md5-secret"), true);
    c.create_role("pw_user", Some("clear-secret"), false);
    c.create_role("trust_user", None, false);
    c.create_role("tls_only", Some("tls-secret"), false);
    c.create_role("plain_only", Some("plain-secret"), false);
    c.create_role("cert_user", None, false);
    c.create_role("app", Some("app-secret"), false);
    c.psql("postgres", "CREATE DATABASE appdb OWNER app");
    c
}

fn config(s: &str) -> Config {
    // No ~/.pgpass or ~/.postgresql of the machine's user leaks into the tests.
    Config::parse_with(s, &|_| None, None).unwrap()
}

async fn connect_str(s: &str) -> Result<Connection, privaci::Error> {
    connect(&config(s)).await
}

async fn whoami(conn: &mut Connection) -> (String, bool) {
    let rows = conn
        .query_text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        .await
        .unwrap();
    (
        rows[0][0].clone().unwrap(),
        rows[0][1].as_deref() == Some("t"),
    )
}

#[tokio::test]
async fn each_authentication_method() {
    let c = standard_cluster();
    for (user, password, method) in [
        ("scram_user", "scram-secret", AuthMethod::ScramSha256),
        ("md5_user", "md5-secret", AuthMethod::Md5),
        ("pw_user", "clear-secret", AuthMethod::Cleartext),
        ("trust_user", "''", AuthMethod::None),
    ] {
        let mut conn = connect_str(&c.conninfo(&format!(
            "user={user} password={password} dbname=postgres sslmode=disable"
        )))
        .await
        .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(conn.info().auth_method, method, "{user}");
        assert_eq!(whoami(&mut conn).await, (user.to_string(), false));
        assert!(conn.parameter("server_version").unwrap().starts_with("15"));
        assert_eq!(conn.parameter("client_encoding"), Some("UTF8"));
        assert_eq!(conn.parameter("application_name"), Some("privaci"));
        conn.close().await.unwrap();
    }
    // The same over TLS, where the server offers SCRAM-SHA-256-PLUS.
    let mut conn = connect_str(
        &c.conninfo("user=md5_user password=md5-secret dbname=postgres sslmode=require"),
    )
    .await
    .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::Md5);
    assert!(conn.info().tls.is_some());
    assert_eq!(whoami(&mut conn).await.0, "md5_user");
}

#[tokio::test]
async fn wrong_password_and_missing_password() {
    let c = standard_cluster();
    for user in ["scram_user", "md5_user", "pw_user"] {
        let err = connect_str(&c.conninfo(&format!(
            "user={user} password=wrong dbname=postgres sslmode=disable"
        )))
        .await
        .err()
        .unwrap_or_else(|| panic!("{user} connected with a wrong password"));
        assert_eq!(err.kind(), ErrorKind::Db);
        assert_eq!(err.code(), Some("28P01"), "{user}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{msg}"
        );
        assert!(msg.contains("HINT: check the password"), "{msg}");
    }
    let err = connect_str(&c.conninfo("user=scram_user dbname=postgres sslmode=disable"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("none was given"), "{err}");
}

#[tokio::test]
async fn each_sslmode() {
    let c = standard_cluster();
    let ca = c.certs().ca_file.display().to_string();
    let base = "user=scram_user password=scram-secret dbname=postgres";
    let case = |mode: &str| c.conninfo(&format!("{base} {mode}"));

    let conn = connect_str(&case("sslmode=disable")).await.unwrap();
    assert!(conn.info().tls.is_none());
    let conn = connect_str(&case("sslmode=allow")).await.unwrap();
    assert!(conn.info().tls.is_none(), "allow tries plaintext first");
    let conn = connect_str(&case("")).await.unwrap();
    let tls = conn
        .info()
        .tls
        .clone()
        .expect("prefer (the default) uses TLS when offered");
    assert_eq!(tls.verification, Verification::None);
    assert_eq!(tls.version, "TLSv1.3");
    let conn = connect_str(&case("sslmode=require")).await.unwrap();
    assert_eq!(
        conn.info().tls.as_ref().unwrap().verification,
        Verification::None
    );
    let conn = connect_str(&case(&format!("sslmode=require sslrootcert={ca}")))
        .await
        .unwrap();
    assert_eq!(
        conn.info().tls.as_ref().unwrap().verification,
        Verification::Chain,
        "require with a root cert acts as verify-ca"
    );
    let conn = connect_str(&case(&format!("sslmode=verify-ca sslrootcert={ca}")))
        .await
        .unwrap();
    assert_eq!(
        conn.info().tls.as_ref().unwrap().verification,
        Verification::Chain
    );
    // verify-full by IP address (the certificate lists 127.0.0.1) and by name.
    let mut conn = connect_str(&case(&format!("sslmode=verify-full sslrootcert={ca}")))
        .await
        .unwrap();
    assert_eq!(
        conn.info().tls.as_ref().unwrap().verification,
        Verification::Full
    );
    assert_eq!(whoami(&mut conn).await.0, "scram_user");
    let conn = connect_str(&format!(
        "host=localhost hostaddr=127.0.0.1 port={} {base} sslmode=verify-full sslrootcert={ca}",
        c.port()
    ))
    .await
    .unwrap();
    assert_eq!(
        conn.info().tls.as_ref().unwrap().verification,
        Verification::Full
    );
}

#[tokio::test]
async fn certificate_verification_failures() {
    let c = standard_cluster();
    let ca = c.certs().ca_file.display().to_string();
    let other = c.certs().other_ca_file.display().to_string();
    let base = format!(
        "port={} user=scram_user password=scram-secret dbname=postgres",
        c.port()
    );

    // The certificate names localhost and 127.0.0.1, not this name.
    let err = connect_str(&format!(
        "host=db.wrong.example hostaddr=127.0.0.1 {base} sslmode=verify-full sslrootcert={ca}"
    ))
    .await
    .err()
    .expect("verify-full accepted a wrong host name");
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(
        err.to_string()
            .contains("does not match host name \"db.wrong.example\""),
        "{err}"
    );
    // verify-ca does not check the name, so the same connection succeeds.
    connect_str(&format!(
        "host=db.wrong.example hostaddr=127.0.0.1 {base} sslmode=verify-ca sslrootcert={ca}"
    ))
    .await
    .unwrap();

    for mode in ["verify-ca", "verify-full", "require"] {
        let err = connect_str(&format!(
            "host=127.0.0.1 {base} sslmode={mode} sslrootcert={other}"
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("{mode} trusted a certificate from another CA"));
        assert_eq!(err.kind(), ErrorKind::Tls, "{mode}");
        assert!(err.to_string().contains("is not trusted"), "{mode}: {err}");
    }
    let err = connect_str(&format!(
        "host=127.0.0.1 {base} sslmode=verify-full sslrootcert=/nonexistent/root.crt"
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/root.crt"), "{err}");
    // Without any root certificate, verify modes refuse before connecting.
    let err = connect_str(&format!("host=127.0.0.1 {base} sslmode=verify-ca"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("root certificate file"), "{err}");
}

#[tokio::test]
async fn allow_and_prefer_fall_back_as_libpq_does() {
    let c = standard_cluster();
    // tls_only is rejected without TLS: allow retries with TLS.
    let conn =
        connect_str(&c.conninfo("user=tls_only password=tls-secret dbname=postgres sslmode=allow"))
            .await
            .unwrap();
    assert!(conn.info().tls.is_some());
    // plain_only is rejected with TLS: prefer retries without.
    let conn = connect_str(
        &c.conninfo("user=plain_only password=plain-secret dbname=postgres sslmode=prefer"),
    )
    .await
    .unwrap();
    assert!(conn.info().tls.is_none());
    // The strict modes do not fall back.
    let err = connect_str(
        &c.conninfo("user=tls_only password=tls-secret dbname=postgres sslmode=disable"),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Some("28000"));
    assert!(err.to_string().contains("pg_hba.conf"), "{err}");
    let err = connect_str(
        &c.conninfo("user=plain_only password=plain-secret dbname=postgres sslmode=require"),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Some("28000"));
}

#[tokio::test]
async fn channel_binding() {
    let c = standard_cluster();
    let base = "user=scram_user password=scram-secret dbname=postgres";
    // Over TLS the default (prefer) binds to the channel.
    let conn = connect_str(&c.conninfo(&format!("{base} sslmode=require")))
        .await
        .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::ScramSha256Plus);
    let conn = connect_str(&c.conninfo(&format!("{base} sslmode=require channel_binding=require")))
        .await
        .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::ScramSha256Plus);
    let conn = connect_str(&c.conninfo(&format!("{base} sslmode=require channel_binding=disable")))
        .await
        .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::ScramSha256);
    // Without TLS, prefer goes on unbound and require refuses.
    let conn = connect_str(&c.conninfo(&format!("{base} sslmode=allow")))
        .await
        .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::ScramSha256);
    let err = connect_str(&c.conninfo(&format!("{base} sslmode=allow channel_binding=require")))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("does not use TLS"), "{err}");
    // A method that cannot bind is refused when binding is required, even over TLS.
    for (user, pw) in [
        ("md5_user", "md5-secret"),
        ("pw_user", "clear-secret"),
        ("trust_user", "''"),
    ] {
        let err = connect_str(&c.conninfo(&format!(
            "user={user} password={pw} dbname=postgres sslmode=require channel_binding=require"
        )))
        .await
        .err()
        .unwrap_or_else(|| panic!("{user} connected without channel binding"));
        assert_eq!(err.kind(), ErrorKind::Auth, "{user}");
        assert!(
            err.to_string().contains("channel binding required"),
            "{user}: {err}"
        );
    }
}

#[tokio::test]
async fn pgpass_lookup() {
    use std::os::unix::fs::PermissionsExt;
    let c = standard_cluster();
    let dir = c.socket_dir().parent().unwrap().join("home");
    std::fs::create_dir_all(&dir).unwrap();
    let passfile = dir.join("pgpass");
    let contents = format!(
        "# a comment\n127.0.0.1:{port}:postgres:md5_user:md5-secret\n*:{port}:*:scram_user:scram-secret\n127.0.0.1:{port}:*:scram_user:wrong-but-later\nlocalhost:{port}:*:pw_user:clear-secret\n",
        port = c.port()
    );
    std::fs::write(&passfile, contents).unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pf = passfile.display();

    let conn = connect_str(&c.conninfo(&format!(
        "user=md5_user dbname=postgres sslmode=disable passfile={pf}"
    )))
    .await
    .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::Md5);
    // First match wins: the wildcard line comes before the wrong password.
    connect_str(&c.conninfo(&format!(
        "user=scram_user dbname=postgres sslmode=disable passfile={pf}"
    )))
    .await
    .unwrap();
    // "localhost" lines match Unix-socket connections.
    let conn = connect_str(&format!(
        "host={} port={} user=pw_user dbname=postgres passfile={pf}",
        c.socket_dir().display(),
        c.port()
    ))
    .await
    .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::ScramSha256);
    // An explicit password wins over the file.
    let err = connect_str(&c.conninfo(&format!(
        "user=scram_user password=nope dbname=postgres sslmode=disable passfile={pf}"
    )))
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Some("28P01"));
    // A file others can read is ignored.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = connect_str(&c.conninfo(&format!(
        "user=scram_user dbname=postgres sslmode=disable passfile={pf}"
    )))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("none was given"), "{err}");
}

#[tokio::test]
async fn unix_socket_connection() {
    let c = standard_cluster();
    let mut conn = connect_str(&format!(
        "host={} port={} user=app password=app-secret dbname=appdb sslmode=prefer",
        c.socket_dir().display(),
        c.port()
    ))
    .await
    .unwrap();
    assert!(conn.info().tls.is_none(), "no TLS on Unix sockets");
    assert_eq!(conn.info().auth_method, AuthMethod::ScramSha256);
    assert_eq!(whoami(&mut conn).await, ("app".to_string(), false));
    // A URI with a percent-encoded socket directory reaches the same server.
    let uri = format!(
        "postgresql://app:app-secret@{}:{}/appdb",
        c.socket_dir().display().to_string().replace('/', "%2F"),
        c.port()
    );
    connect_str(&uri).await.unwrap();
}

#[tokio::test]
async fn client_certificate_authentication() {
    let c = standard_cluster();
    let (cert, key) = c.certs().client_cert("cert_user");
    let mut conn = connect_str(&c.conninfo(&format!(
        "user=cert_user dbname=postgres sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        c.certs().ca_file.display(),
        cert.display(),
        key.display()
    )))
    .await
    .unwrap();
    assert_eq!(conn.info().auth_method, AuthMethod::None);
    assert_eq!(whoami(&mut conn).await.0, "cert_user");
    // Without the certificate the server refuses.
    let err = connect_str(&c.conninfo("user=cert_user dbname=postgres sslmode=require"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some("28000"), "{err}");
}

#[tokio::test]
async fn ipv6_uri() {
    if !support::ipv6_loopback_available() {
        eprintln!("::1 is not available on this machine; IPv6 parsing is covered by unit tests");
        return;
    }
    let c = standard_cluster();
    let mut conn = connect_str(&format!(
        "postgresql://scram_user:scram-secret@[::1]:{}/postgres?sslmode=verify-full&sslrootcert={}",
        c.port(),
        c.certs().ca_file.display()
    ))
    .await
    .unwrap();
    assert_eq!(whoami(&mut conn).await.0, "scram_user");
}

#[tokio::test]
async fn unreachable_host_and_connect_timeout() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = connect_str(&format!(
        "host=127.0.0.1 port={port} user=u sslmode=disable"
    ))
    .await
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.to_string().contains("Connection refused"), "{err}");
    assert!(
        err.to_string().contains("accepting TCP/IP connections"),
        "{err}"
    );

    // A listener that accepts and never answers: connect_timeout ends the wait.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let err = connect_str(&format!(
        "host=127.0.0.1 port={port} user=u sslmode=disable connect_timeout=2"
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("timed out after 2 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    holder.abort();

    // Several hosts: the first fails, the second answers.
    let c = standard_cluster();
    let mut conn = connect_str(&format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=app password=app-secret dbname=appdb",
        port_with_nothing(),
        c.port()
    ))
    .await
    .unwrap();
    assert_eq!(whoami(&mut conn).await.0, "app");
}

fn port_with_nothing() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn simple_query_results_errors_and_recovery() {
    let c = standard_cluster();
    let mut conn = connect_str(&c.conninfo("user=app password=app-secret dbname=appdb"))
        .await
        .unwrap();
    let results = conn
        .simple_query("CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'ä'), (2, NULL); SELECT id, name FROM t ORDER BY id;;")
        .await
        .unwrap();
    // An empty statement inside a longer string gives no result; only an empty string does.
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].tag, "CREATE TABLE");
    assert_eq!(results[1].rows_affected(), Some(2));
    let select = &results[2];
    assert_eq!(select.tag, "SELECT 2");
    assert_eq!(
        select
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["id", "name"]
    );
    assert_eq!(select.columns[0].type_oid, 23);
    assert_eq!(select.get(0, 1).unwrap(), Some("ä"));
    assert_eq!(select.get(1, 1).unwrap(), None);
    let empty = conn.simple_query("").await.unwrap();
    assert_eq!(empty.len(), 1, "EmptyQueryResponse");
    assert!(empty[0].tag.is_empty() && empty[0].rows.is_empty());

    // An error names SQLSTATE, position and table; statements after it do not run; the
    // connection stays usable.
    let err = conn
        .simple_query("SELECT 1; SELECT * FROM missing_table; SELECT 3")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some("42P01"));
    let db = err.db_error().unwrap();
    assert_eq!(
        db.position,
        Some(25),
        "position counts from the start of the whole query string"
    );
    assert_eq!(db.severity_code(), "ERROR");
    let err = conn
        .simple_query("INSERT INTO t VALUES ('x')")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some("22P02"));
    conn.execute("ALTER TABLE t ADD CONSTRAINT t_id CHECK (id > 0)")
        .await
        .unwrap();
    let err = conn
        .simple_query("INSERT INTO t VALUES (-1)")
        .await
        .err()
        .unwrap();
    assert_eq!(err.db_error().unwrap().constraint.as_deref(), Some("t_id"));
    assert_eq!(err.db_error().unwrap().table.as_deref(), Some("t"));
    assert_eq!(
        conn.query_text("SELECT count(*) FROM t").await.unwrap()[0][0].as_deref(),
        Some("2")
    );

    // A failed transaction block is reported by ReadyForQuery's status, then rolled back.
    let _ = conn.simple_query("BEGIN; SELECT 1/0").await;
    assert_eq!(conn.transaction_status(), b'E');
    conn.execute("ROLLBACK").await.unwrap();
    assert_eq!(conn.transaction_status(), b'I');

    // Notices go to the log, not into the results; ParameterStatus updates are tracked.
    let results = conn
        .simple_query("DO $$ BEGIN RAISE NOTICE 'hello'; END $$; SET application_name = 'renamed'")
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(conn.parameter("application_name"), Some("renamed"));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn cancel_a_running_query() {
    let c = standard_cluster();
    for conninfo in [
        c.conninfo("user=app password=app-secret dbname=appdb sslmode=require"),
        format!(
            "host={} port={} user=app password=app-secret dbname=appdb",
            c.socket_dir().display(),
            c.port()
        ),
    ] {
        let mut conn = connect_str(&conninfo).await.unwrap();
        let token = conn.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            token.cancel().await
        });
        let started = std::time::Instant::now();
        let err = conn
            .simple_query("SELECT pg_sleep(30)")
            .await
            .expect_err("the sleep was not cancelled");
        assert_eq!(err.code(), Some("57014"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        canceller.await.unwrap().unwrap();
        assert_eq!(
            conn.query_text("SELECT 42").await.unwrap()[0][0].as_deref(),
            Some("42")
        );
    }
}

#[test]
fn ping_command_against_tls_scram_cluster() {
    let c = standard_cluster();
    let bin = env!("CARGO_BIN_EXE_privaci");
    let ca = c.certs().ca_file.display().to_string();
    let out = std::process::Command::new(bin)
        .args([
            "ping",
            &format!(
                "postgresql://app@localhost:{}/appdb?sslmode=verify-full&sslrootcert={ca}",
                c.port()
            ),
        ])
        .env("PGPASSWORD", "app-secret")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("server version:  15."), "{stdout}");
    assert!(stdout.contains("user:            app\n"), "{stdout}");
    assert!(stdout.contains("database:        appdb\n"), "{stdout}");
    assert!(
        stdout.contains("TLS:             TLSv1.3, TLS13_"),
        "{stdout}"
    );
    assert!(
        stdout.contains("certificate chain and host name verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("authentication:  SCRAM-SHA-256-PLUS"),
        "{stdout}"
    );

    let out = std::process::Command::new(bin)
        .args([
            "ping",
            &format!("host=127.0.0.1 port={} user=app dbname=appdb", c.port()),
        ])
        .env("PGPASSWORD", "wrong")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed for user \"app\""),
        "{stderr}"
    );

    // Environment variables fill what the string leaves out.
    let mut passfile = tempfile_in(c.socket_dir().parent().unwrap(), "pgpass");
    writeln!(passfile.1, "*:*:*:app:app-secret").unwrap();
    let out = std::process::Command::new(bin)
        .arg("ping")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", c.port().to_string())
        .env("PGUSER", "app")
        .env("PGDATABASE", "appdb")
        .env("PGSSLMODE", "verify-ca")
        .env("PGSSLROOTCERT", &ca)
        .env("PGPASSFILE", &passfile.0)
        .env("HOME", "/nonexistent")
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("host name not checked"));
    passfile.0.pop();
}

fn tempfile_in(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::fs::File) {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    (path, f)
}
