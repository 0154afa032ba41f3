//! Throwaway PostgreSQL clusters for the tests, the benchmarks and `privaci demo`: each gets
//! its own data directory, port, socket directory and TLS certificates, and is stopped and
//! removed when the value is dropped (also while a failing test unwinds). When run as root,
//! the server runs as the `postgres` user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Where the server binaries are: `PG_BINDIR`, else `pg_config --bindir`, else Debian's path.
pub fn bindir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let candidates = std::env::var_os("PG_BINDIR")
            .map(PathBuf::from)
            .into_iter()
            .chain(
                Command::new("pg_config")
                    .arg("--bindir")
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
            )
            .chain(std::iter::once(PathBuf::from("/usr/lib/postgresql/15/bin")));
        for dir in candidates {
            if dir.join("postgres").exists() && dir.join("initdb").exists() {
                return dir;
            }
        }
        panic!(
            "PostgreSQL server binaries (initdb, postgres, pg_ctl) not found. Install them with \
             `apt-get install postgresql-15` (Debian/Ubuntu), or set PG_BINDIR to the directory \
             that holds them."
        )
    })
    .clone()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A command run as the server's owner: `postgres` when we are root, ourselves otherwise.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Gives `path` to the user the server runs as (when privaci runs as root).
pub fn chown_to_server_user(path: &Path) {
    if is_root() {
        run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path),
            "chown",
        );
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn version_tag() -> String {
    let out = run(
        Command::new(bindir().join("postgres")).arg("--version"),
        "postgres --version",
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .unwrap_or("unknown")
        .to_string()
}

/// An initdb'd data directory, made once and copied for each cluster: initdb is the slow part.
/// It lives in the temp directory keyed by server version, so test processes share it.
fn template() -> PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let path =
                std::env::temp_dir().join(format!("privaci-pg-template-{}-v1", version_tag()));
            if path.join("PG_VERSION").exists() {
                return path;
            }
            let building = std::env::temp_dir()
                .join(format!("privaci-pg-template-build-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&building);
            std::fs::create_dir_all(&building).unwrap();
            chown_to_server_user(&building);
            run(
                as_server_user(&bindir().join("initdb"))
                    .args([
                        "-N",
                        "-A",
                        "trust",
                        "-U",
                        "postgres",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "-D",
                    ])
                    .arg(building.join("data")),
                "initdb",
            );
            // Another process may have finished first: either way a complete template exists.
            if std::fs::rename(building.join("data"), &path).is_err() {
                assert!(
                    path.join("PG_VERSION").exists(),
                    "template at {} is incomplete",
                    path.display()
                );
            }
            let _ = std::fs::remove_dir_all(&building);
            path
        })
        .clone()
}

fn unique_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!(
        "privaci-test-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn ipv6_loopback_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Certificates made at test time: a CA the server's certificate chains to, another CA that
/// signed nothing here (to test "untrusted"), and a client certificate per requested user.
pub struct TestCerts {
    pub ca_file: PathBuf,
    pub other_ca_file: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    dir: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

/// A self-signed CA: its parameters and key (to sign with) and its certificate.
fn self_signed_ca(name: &str) -> (CertificateParams, KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().expect("key generation");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed CA");
    (params, key, cert)
}

impl TestCerts {
    fn generate(dir: &Path, server_names: &[String]) -> TestCerts {
        std::fs::create_dir_all(dir).unwrap();
        let (ca_params, ca_key, ca_cert) = self_signed_ca("privaci test CA");
        let (_, _, other_cert) = self_signed_ca("unrelated CA");

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(server_names.to_vec()).unwrap();
        server_params.distinguished_name.push(
            DnType::CommonName,
            server_names.first().cloned().unwrap_or_default(),
        );
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let write = |name: &str, contents: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.join(name);
            std::fs::write(&p, contents).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let ca_file = write("ca.crt", &ca_cert.pem(), 0o644);
        let other_ca_file = write("other-ca.crt", &other_cert.pem(), 0o644);
        let server_cert = write("server.crt", &server_cert.pem(), 0o644);
        let server_key = write("server.key", &server_key.serialize_pem(), 0o600);
        TestCerts {
            ca_file,
            other_ca_file,
            server_cert,
            server_key,
            dir: dir.to_path_buf(),
            ca_params,
            ca_key,
        }
    }

    /// A client certificate for `user` (CN = user) signed by the test CA: (cert, key) files,
    /// readable by the current user only.
    pub fn client_cert(&self, user: &str) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key))
            .unwrap();
        let cert_path = self.dir.join(format!("client-{user}.crt"));
        let key_path = self.dir.join(format!("client-{user}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (cert_path, key_path)
    }
}

pub struct ClusterBuilder {
    hba: Vec<String>,
    tls: bool,
    server_names: Vec<String>,
    settings: Vec<String>,
}

impl ClusterBuilder {
    /// A pg_hba.conf line, e.g. `host all app 127.0.0.1/32 scram-sha-256`. Lines are matched
    /// in order; the superuser's `local` trust line used by the harness always comes first.
    pub fn hba(mut self, line: &str) -> Self {
        self.hba.push(line.to_string());
        self
    }

    /// Turns TLS off (it is on by default).
    pub fn without_tls(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Subject alternative names for the server certificate (default: localhost, 127.0.0.1, ::1).
    pub fn server_names(mut self, names: &[&str]) -> Self {
        self.server_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// An extra postgresql.conf line.
    pub fn setting(mut self, line: &str) -> Self {
        self.settings.push(line.to_string());
        self
    }

    pub fn start(self) -> Cluster {
        let bindir = bindir();
        let template = template();
        let dir = unique_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        run(
            Command::new("cp").arg("-a").arg(&template).arg(&data),
            "copying the template cluster",
        );
        let certs = self
            .tls
            .then(|| TestCerts::generate(&dir.join("certs"), &self.server_names));

        let mut conf = String::from("\n# privaci test cluster\n");
        let listen = if ipv6_loopback_available() {
            "127.0.0.1,::1"
        } else {
            "127.0.0.1"
        };
        conf += &format!(
            "listen_addresses = '{listen}'\nunix_socket_directories = '{}'\n",
            sock.display()
        );
        conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\nmax_connections = 40\n";
        conf += "password_encryption = 'scram-sha-256'\nlog_min_messages = warning\n";
        if let Some(c) = &certs {
            conf += &format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n",
                c.server_cert.display(),
                c.server_key.display(),
                c.ca_file.display()
            );
        }
        for s in &self.settings {
            conf += s;
            conf.push('\n');
        }
        let mut hba = String::from("local all postgres trust\n");
        for line in &self.hba {
            hba += line;
            hba.push('\n');
        }
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let mut base_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        base_conf += &conf;
        chown_to_server_user(&dir);

        let mut cluster = Cluster {
            dir,
            data,
            sock,
            port: 0,
            certs,
            bindir,
            running: false,
        };
        for attempt in 0..5 {
            let port = free_port();
            std::fs::write(
                cluster.data.join("postgresql.conf"),
                format!("{base_conf}port = {port}\n"),
            )
            .unwrap();
            let out = as_server_user(&cluster.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&cluster.data)
                .arg("-l")
                .arg(cluster.dir.join("server.log"))
                .args(["-w", "-t", "60", "start"])
                .output()
                .expect("could not run pg_ctl");
            if out.status.success() {
                cluster.port = port;
                cluster.running = true;
                return cluster;
            }
            let log = std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default();
            if !log.contains("could not bind") || attempt == 4 {
                panic!(
                    "PostgreSQL did not start:\n{}\n{log}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        unreachable!()
    }
}

pub struct Cluster {
    dir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    port: u16,
    certs: Option<TestCerts>,
    bindir: PathBuf,
    running: bool,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            hba: Vec::new(),
            tls: true,
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            settings: Vec::new(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    pub fn certs(&self) -> &TestCerts {
        self.certs
            .as_ref()
            .expect("this cluster was started without TLS")
    }

    /// A key=value connection string to this cluster over TCP on 127.0.0.1, plus `extra`.
    pub fn conninfo(&self, extra: &str) -> String {
        format!("host=127.0.0.1 port={} {extra}", self.port)
    }

    /// psql as the superuser over this cluster's Unix socket, running `sql` in `db` with
    /// the given output options; panics with psql's message on failure.
    fn psql_run(&self, db: &str, output: &[&str], sql: &str) -> Vec<u8> {
        run(
            Command::new(self.bindir.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
                .arg(&self.sock)
                .args(["-p", &self.port.to_string(), "-d", db])
                .args(output)
                .args(["-c", sql]),
            &format!("psql -c {sql:?}"),
        )
        .stdout
    }

    /// A psql command (as the superuser, unaligned, stopping at the first error) not yet run:
    /// for sessions a test runs in the background, such as DDL that must wait for a lock.
    pub fn psql_command(&self, db: &str, sql: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join("psql"));
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "postgres",
            "-h",
        ])
        .arg(&self.sock)
        .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]);
        cmd
    }

    /// Restarts the server (fast shutdown: sessions are cut, as in a failover or a crash
    /// restart), on the same port.
    pub fn restart(&self) {
        run(
            as_server_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-m", "fast", "-w", "-t", "60", "restart"]),
            "pg_ctl restart",
        );
    }

    /// Runs SQL with psql, an independent client; returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        String::from_utf8_lossy(&self.psql_run(db, &["-A", "-t"], sql))
            .trim_end()
            .to_string()
    }

    /// A query's result as psql prints a table (aligned, with headers).
    pub fn psql_table(&self, db: &str, sql: &str) -> String {
        String::from_utf8_lossy(&self.psql_run(db, &["-P", "footer=off"], sql)).into_owned()
    }

    /// `COPY ... TO STDOUT` run by psql: the server's own bytes, as an independent witness.
    pub fn psql_copy_out(&self, db: &str, copy_sql: &str) -> Vec<u8> {
        self.psql_run(db, &[], copy_sql)
    }

    /// Creates a login role (never a superuser) with a password stored as SCRAM or MD5.
    pub fn create_role(&self, name: &str, password: Option<&str>, md5: bool) {
        let encryption = if md5 { "md5" } else { "scram-sha-256" };
        let pw = password
            .map(|p| format!(" PASSWORD '{}'", p.replace('\'', "''")))
            .unwrap_or_default();
        self.psql("postgres", &format!("SET password_encryption = '{encryption}'; CREATE ROLE \"{name}\" LOGIN NOSUPERUSER{pw}"));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = as_server_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The MedicalHelpDesk fixture (seed 001), built into the binary for `privaci demo`.
pub const FIXTURE_SQL: &str = include_str!("../tests/fixtures/medicalhelpdesk.sql");

/// Loads the MedicalHelpDesk fixture into `db` as role `owner` (a non-superuser), at `scale`.
pub fn load_fixture(c: &Cluster, db: &str, owner: &str, scale: u32) {
    load_sql(c, db, owner, scale, FIXTURE_SQL);
}

/// Runs a SQL script (psql's, stopping at the first error) in `db` as role `owner`, with the
/// psql variable `scale` set.
pub fn load_sql(c: &Cluster, db: &str, owner: &str, scale: u32, sql: &str) {
    use std::io::Write;
    let mut child = Command::new(c.bindir.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
        .arg(&c.sock)
        .args([
            "-p",
            &c.port.to_string(),
            "-d",
            db,
            "-v",
            &format!("scale={scale}"),
        ])
        .arg("-c")
        .arg(format!("SET ROLE {owner}"))
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("could not run psql");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(sql.as_bytes())
            .expect("could not send the script to psql");
    }
    let out = child.wait_with_output().expect("psql did not finish");
    assert!(
        out.status.success(),
        "loading the script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// `pg_dump --schema-only --no-owner --no-privileges` of `db`: the witness of schema
    /// fidelity (ownership and grants differ by design when cloning as another role).
    pub fn pg_dump_schema(&self, db: &str) -> String {
        self.pg_dump(db, &["--schema-only", "--no-owner", "--no-privileges"])
    }

    /// `pg_dump` of `db` with `args`, without its per-dump random lines.
    pub fn pg_dump(&self, db: &str, args: &[&str]) -> String {
        let out = run(
            Command::new(self.bindir.join("pg_dump"))
                .args(args)
                .args(["-U", "postgres", "-h"])
                .arg(&self.sock)
                .args(["-p", &self.port.to_string(), "-d", db]),
            "pg_dump",
        );
        // `\restrict KEY` / `\unrestrict KEY` carry a random key per dump (a psql safety
        // measure): the only lines that must differ between two dumps.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}
