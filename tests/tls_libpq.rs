//! Server certificates as users make them with openssl (the PostgreSQL documentation's
//! recipes): privaci must accept exactly what psql (libpq) accepts under `verify-full` and
//! `verify-ca`, and refuse the rest with a sentence. Each case runs psql and privaci against
//! the same server and certificate; the server is reloaded with each certificate.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Cluster;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each case: (name, server certificate file, key file, root file).
fn make_certs(dir: &Path) -> Vec<(&'static str, PathBuf, PathBuf, PathBuf)> {
    let p = |f: &str| dir.join(f);
    let key = |name: &str| {
        openssl(dir, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
    };
    // 1. The docs' self-signed recipe: `x509 -req -signkey` gives a version 1 certificate,
    //    CN=localhost, no subjectAltName, used as its own root.
    key("v1self");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "v1self.key",
            "-out",
            "v1self.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "v1self.csr",
            "-days",
            "365",
            "-signkey",
            "v1self.key",
            "-out",
            "v1self.crt",
        ],
    );
    // 2. `req -x509`: version 3, CA:TRUE, CN only, used as its own root.
    key("caself");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "caself.key",
            "-out",
            "caself.crt",
            "-days",
            "365",
            "-subj",
            "/CN=localhost",
        ],
    );
    // 3. A root CA, and a server certificate it signs with `x509 -req -CA` (version 1).
    key("root");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-out",
            "root.crt",
            "-days",
            "365",
            "-subj",
            "/CN=Test Root CA",
        ],
    );
    key("v1leaf");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "v1leaf.key",
            "-out",
            "v1leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "v1leaf.csr",
            "-days",
            "365",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "v1leaf.crt",
        ],
    );
    // 4. The same as version 3 (an extension), still without subjectAltName.
    std::fs::write(
        p("v3.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    key("v3cn");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "v3cn.key",
            "-out",
            "v3cn.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "v3cn.csr",
            "-days",
            "365",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-extfile",
            "v3.ext",
            "-out",
            "v3cn.crt",
        ],
    );
    // 5. A certificate for clients only, self-signed: no server may use it.
    key("client");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "client.key",
            "-out",
            "client.crt",
            "-days",
            "365",
            "-subj",
            "/CN=localhost",
            "-addext",
            "extendedKeyUsage=clientAuth",
        ],
    );
    // 6. Another host's certificate, trusted.
    key("other");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "other.key",
            "-out",
            "other.csr",
            "-subj",
            "/CN=db.elsewhere.example",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "other.csr",
            "-days",
            "365",
            "-signkey",
            "other.key",
            "-out",
            "other.crt",
        ],
    );
    // 7. Expired: self-signed, CN only, valid in 2020 alone.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 12, 31);
    let kp = rcgen::KeyPair::generate().unwrap();
    let expired = params.self_signed(&kp).unwrap();
    std::fs::write(p("expired.crt"), expired.pem()).unwrap();
    std::fs::write(p("expired.key"), kp.serialize_pem()).unwrap();
    vec![
        (
            "expired, self-signed",
            p("expired.crt"),
            p("expired.key"),
            p("expired.crt"),
        ),
        (
            "v1 self-signed as its own root",
            p("v1self.crt"),
            p("v1self.key"),
            p("v1self.crt"),
        ),
        (
            "CA:TRUE self-signed as its own root",
            p("caself.crt"),
            p("caself.key"),
            p("caself.crt"),
        ),
        (
            "v1 signed by a root",
            p("v1leaf.crt"),
            p("v1leaf.key"),
            p("root.crt"),
        ),
        (
            "v3, common name only",
            p("v3cn.crt"),
            p("v3cn.key"),
            p("root.crt"),
        ),
        (
            "untrusted: another root",
            p("v1leaf.crt"),
            p("v1leaf.key"),
            p("caself.crt"),
        ),
        (
            "client-only key usage",
            p("client.crt"),
            p("client.key"),
            p("client.crt"),
        ),
        (
            "another host's certificate",
            p("other.crt"),
            p("other.key"),
            p("other.crt"),
        ),
    ]
}

/// The same connection string for psql and privaci.
fn conninfo(c: &Cluster, host: &str, sslmode: &str, root: &Path) -> String {
    format!(
        "host={host} hostaddr=127.0.0.1 port={} user=app password=app-secret dbname=postgres sslmode={sslmode} sslrootcert={}",
        c.port(),
        root.display()
    )
}

fn psql_connects(c: &Cluster, host: &str, sslmode: &str, root: &Path) -> bool {
    Command::new(support::bindir().join("psql"))
        .arg(conninfo(c, host, sslmode, root))
        .args(["-X", "-A", "-t", "-c", "SELECT 1"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
        .status
        .success()
}

fn privaci_connects(c: &Cluster, host: &str, sslmode: &str, root: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_privaci"))
        .arg("ping")
        .arg(conninfo(c, host, sslmode, root))
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn privaci_accepts_exactly_the_certificates_psql_accepts() {
    let dir = std::env::temp_dir().join(format!("privaci-tls-libpq-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cases = make_certs(&dir);
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        use std::os::unix::fs::PermissionsExt;
        let mode = if path.extension().is_some_and(|e| e == "key") {
            0o600
        } else {
            0o644
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    support::chown_to_server_user(&dir);

    let c = Cluster::builder()
        .hba("hostssl all app 127.0.0.1/32 scram-sha-256")
        .start();
    c.create_role("app", Some("app-secret"), false);
    let mut accepted = Vec::new();
    for (name, cert, key, root) in &cases {
        c.psql(
            "postgres",
            &format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        );
        c.psql(
            "postgres",
            &format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        );
        c.psql("postgres", "SELECT pg_reload_conf()");
        std::thread::sleep(std::time::Duration::from_millis(300));
        for (host, sslmode) in [
            ("localhost", "verify-full"),
            ("127.0.0.1", "verify-full"),
            ("localhost", "verify-ca"),
        ] {
            let libpq = psql_connects(&c, host, sslmode, root);
            let (ours, err) = privaci_connects(&c, host, sslmode, root);
            assert_eq!(
                ours,
                libpq,
                "{name}, host={host} sslmode={sslmode}: psql {} but privaci {}: {err}",
                if libpq { "connects" } else { "refuses" },
                if ours { "connects" } else { "refuses" }
            );
            if ours {
                accepted.push(format!("{name} {host} {sslmode}"));
            } else {
                // A refusal is a sentence, never a rustls debug string.
                assert!(
                    !err.contains("OtherError")
                        && !err.contains("Other(")
                        && err.contains("certificate"),
                    "{name}, host={host} sslmode={sslmode}: {err}"
                );
            }
        }
    }
    // The cases libpq accepts were accepted (not everything refused by both).
    for expected in [
        "v1 self-signed as its own root localhost verify-full",
        "CA:TRUE self-signed as its own root localhost verify-full",
        "v1 signed by a root localhost verify-full",
        "v3, common name only localhost verify-full",
        "another host's certificate localhost verify-ca",
    ] {
        assert!(
            accepted.iter().any(|a| a == expected),
            "{expected}: {accepted:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
