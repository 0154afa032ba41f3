//! Connection settings with libpq's conventions: URIs and `key=value` strings, `PG*`
//! environment variables (explicit values win), defaults, and `~/.pgpass`.

pub mod parse;
pub mod pgpass;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(msg: impl Into<String>) -> Self {
        ConfigError(msg.into())
    }
}

/// `sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plaintext first; TLS if the server refuses the plaintext connection.
    Allow,
    /// TLS if the server offers it, plaintext otherwise (the default).
    Prefer,
    /// TLS, without checking the certificate (unless a root certificate is configured, as in
    /// libpq, which then verifies the chain like `verify-ca`).
    Require,
    /// TLS with a certificate chain that leads to a trusted root.
    VerifyCa,
    /// `verify-ca` plus the host name checked against the certificate.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Option<SslMode> {
        Some(match v {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `channel_binding`: whether SCRAM binds to the TLS channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBindingMode {
    Disable,
    Prefer,
    Require,
}

/// Where the server is: a TCP host name or address, or a Unix-socket directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Tcp(String),
    Unix(PathBuf),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Tcp(h) => f.write_str(h),
            Host::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One server to try, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    /// `hostaddr`: connect here, but verify the certificate and match `.pgpass` against `host`.
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.hostaddr) {
            (Host::Unix(dir), _) => {
                write!(f, "socket \"{}/.s.PGSQL.{}\"", dir.display(), self.port)
            }
            (Host::Tcp(h), Some(addr)) if h != &addr.to_string() => {
                write!(f, "{h} ({addr}), port {}", self.port)
            }
            (Host::Tcp(h), _) => write!(f, "{h}, port {}", self.port),
        }
    }
}

/// `sslrootcert`: a PEM file, or `system` for the operating system's trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    System,
}

/// Everything needed to connect, after parsing, environment and defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub targets: Vec<Target>,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub options: Option<String>,
    pub application_name: String,
    pub sslmode: SslMode,
    /// Set explicitly or by `PGSSLROOTCERT`; otherwise `~/.postgresql/root.crt` if it exists.
    pub sslrootcert: Option<RootCert>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub sslsni: bool,
    pub channel_binding: ChannelBindingMode,
    pub connect_timeout: Option<Duration>,
    pub passfile: Option<PathBuf>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("targets", &self.targets)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("channel_binding", &self.channel_binding)
            .finish_non_exhaustive()
    }
}

/// Keywords libpq knows that privaci accepts and ignores, because they cannot change what
/// privaci does (it never uses GSSAPI encryption, compression, or keepalive tuning).
const IGNORED_KEYWORDS: &[&str] = &[
    "client_encoding",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "gssencmode",
    "target_session_attrs",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
];

/// Keywords libpq knows that privaci cannot honour: refusing them beats silently connecting
/// in a way the user did not ask for.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "service",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "requirepeer",
    "krbsrvname",
    "gsslib",
    "replication",
    "load_balance_hosts",
    "require_auth",
];

const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("dbname", Some("PGDATABASE")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslsni", Some("PGSSLSNI")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("passfile", Some("PGPASSFILE")),
];

/// Where a setting came from, so an error can say which to fix.
fn source(key: &str, env: Option<&str>) -> String {
    match env {
        Some(var) => format!("{var} (environment)"),
        None => format!("\"{key}\""),
    }
}

impl Config {
    /// Parses a connection string with the process environment and the user's home directory.
    pub fn parse(conninfo: &str) -> Result<Config, ConfigError> {
        Self::parse_with(
            conninfo,
            &|name| std::env::var(name).ok(),
            home_dir().as_deref(),
        )
    }

    /// Parses with an injected environment and home directory (for tests and embedding).
    pub fn parse_with(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let explicit = parse::parse_pairs(conninfo)?;
        // Resolve each keyword: the last explicit value wins, then the environment.
        let mut values: Vec<(&'static str, String, Option<&'static str>)> = Vec::new();
        for (key, _) in &explicit {
            if IGNORED_KEYWORDS.contains(&key.as_str()) {
                continue;
            }
            if UNSUPPORTED_KEYWORDS.contains(&key.as_str()) {
                return Err(ConfigError::new(format!(
                    "connection option \"{key}\" is not supported by privaci; remove it from the connection string"
                )));
            }
            if !KEYWORDS.iter().any(|(k, _)| k == key) {
                return Err(ConfigError::new(format!(
                    "invalid connection option \"{key}\""
                )));
            }
        }
        for (key, var) in KEYWORDS {
            if let Some((_, v)) = explicit.iter().rev().find(|(k, _)| k == key) {
                values.push((key, v.clone(), None));
            } else if let Some(v) = var.and_then(env) {
                values.push((key, v, *var));
            }
        }
        let get = |key: &str| {
            values
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, v, var)| (v.as_str(), *var))
        };

        let hosts: Vec<String> = match get("host") {
            Some((h, _)) => h.split(',').map(str::to_string).collect(),
            None => vec![String::new()],
        };
        let hostaddrs: Vec<Option<IpAddr>> = match get("hostaddr") {
            Some((list, var)) => list
                .split(',')
                .map(|a| {
                    if a.is_empty() {
                        return Ok(None);
                    }
                    a.parse().map(Some).map_err(|_| {
                        ConfigError::new(format!(
                            "invalid IP address \"{a}\" in {}",
                            source("hostaddr", var)
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let ports: Vec<u16> = match get("port") {
            Some((list, var)) => list
                .split(',')
                .map(|p| {
                    if p.is_empty() {
                        return Ok(5432);
                    }
                    p.trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            ConfigError::new(format!(
                                "invalid port number \"{p}\" in {}",
                                source("port", var)
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
            None => vec![5432],
        };
        let n = hosts.len().max(hostaddrs.len());
        if hostaddrs.len() > 1 && hosts.len() > 1 && hostaddrs.len() != hosts.len() {
            return Err(ConfigError::new(format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                hostaddrs.len()
            )));
        }
        if ports.len() != 1 && ports.len() != n {
            return Err(ConfigError::new(format!(
                "could not match {} port numbers to {n} hosts",
                ports.len()
            )));
        }
        let mut targets = Vec::with_capacity(n);
        for i in 0..n {
            let name = hosts
                .get(i)
                .or(if hosts.len() == 1 {
                    hosts.first()
                } else {
                    None
                })
                .cloned()
                .unwrap_or_default();
            let hostaddr = hostaddrs.get(i).copied().flatten();
            let host = if name.starts_with('/') {
                Host::Unix(PathBuf::from(name))
            } else if name.is_empty() {
                match hostaddr {
                    Some(addr) => Host::Tcp(addr.to_string()),
                    None => default_host(),
                }
            } else {
                Host::Tcp(name)
            };
            let port = if ports.len() == 1 { ports[0] } else { ports[i] };
            targets.push(Target {
                host,
                hostaddr,
                port,
            });
        }

        let user = match get("user") {
            Some((u, _)) if !u.is_empty() => u.to_string(),
            _ => os_user_name().ok_or_else(|| {
                ConfigError::new("no user name given and the operating-system user could not be determined; set user= or PGUSER")
            })?,
        };
        let dbname = match get("dbname") {
            Some((d, _)) if !d.is_empty() => d.to_string(),
            _ => user.clone(),
        };

        let sslmode = match get("sslmode") {
            Some((v, var)) => SslMode::parse(v).ok_or_else(|| {
                ConfigError::new(format!(
                    "invalid sslmode value \"{v}\" in {} (expected disable, allow, prefer, require, verify-ca or verify-full)",
                    source("sslmode", var)
                ))
            })?,
            None => SslMode::Prefer,
        };
        let path_of = |v: &str| expand_home(v, home);
        let sslrootcert = match get("sslrootcert") {
            Some(("system", _)) => Some(RootCert::System),
            Some((v, _)) if !v.is_empty() => Some(RootCert::File(path_of(v))),
            _ => home
                .map(|h| h.join(".postgresql/root.crt"))
                .filter(|p| p.exists())
                .map(RootCert::File),
        };
        if sslrootcert == Some(RootCert::System)
            && sslmode != SslMode::VerifyFull
            && sslmode != SslMode::Disable
        {
            // libpq refuses this too: the system store trusts every public CA, so only a
            // host-name check makes it meaningful.
            return Err(ConfigError::new(format!(
                "sslrootcert=system requires sslmode=verify-full (got sslmode={})",
                sslmode.as_str()
            )));
        }
        let sslcert = match get("sslcert") {
            Some((v, _)) if !v.is_empty() => Some(path_of(v)),
            _ => home
                .map(|h| h.join(".postgresql/postgresql.crt"))
                .filter(|p| p.exists()),
        };
        let sslkey = match get("sslkey") {
            Some((v, _)) if !v.is_empty() => Some(path_of(v)),
            _ => sslcert
                .is_some()
                .then(|| home.map(|h| h.join(".postgresql/postgresql.key")))
                .flatten()
                .filter(|p| p.exists()),
        };
        let sslsni = match get("sslsni") {
            Some(("0", _)) => false,
            Some(("1", _)) | None => true,
            Some((v, var)) => {
                return Err(ConfigError::new(format!(
                    "invalid sslsni value \"{v}\" in {} (expected 0 or 1)",
                    source("sslsni", var)
                )))
            }
        };
        let channel_binding = match get("channel_binding") {
            None | Some(("prefer", _)) => ChannelBindingMode::Prefer,
            Some(("disable", _)) => ChannelBindingMode::Disable,
            Some(("require", _)) => ChannelBindingMode::Require,
            Some((v, var)) => {
                return Err(ConfigError::new(format!(
                "invalid channel_binding value \"{v}\" in {} (expected disable, prefer or require)",
                source("channel_binding", var)
            )))
            }
        };
        if channel_binding == ChannelBindingMode::Require && sslmode == SslMode::Disable {
            return Err(ConfigError::new(
                "channel_binding=require needs TLS, but sslmode=disable; use sslmode=require or stricter",
            ));
        }
        let connect_timeout = match get("connect_timeout") {
            None => None,
            Some((v, var)) => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    ConfigError::new(format!(
                        "invalid connect_timeout value \"{v}\" in {}",
                        source("connect_timeout", var)
                    ))
                })?;
                // As libpq: zero or less waits forever, and anything under 2 s means 2 s.
                (secs > 0).then(|| Duration::from_secs(secs.max(2) as u64))
            }
        };
        let passfile = match get("passfile") {
            Some((v, _)) if !v.is_empty() => Some(path_of(v)),
            _ => home.map(|h| h.join(".pgpass")),
        };

        Ok(Config {
            targets,
            user,
            password: get("password").map(|(p, _)| p.to_string()),
            dbname,
            options: get("options")
                .map(|(o, _)| o.to_string())
                .filter(|o| !o.is_empty()),
            application_name: get("application_name")
                .map_or_else(|| "privaci".to_string(), |(a, _)| a.to_string()),
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
            sslsni,
            channel_binding,
            connect_timeout,
            passfile,
        })
    }

    /// The password for a target: the configured one, else the first matching `.pgpass` line.
    pub fn password_for(&self, target: &Target) -> Option<String> {
        if let Some(pw) = &self.password {
            return Some(pw.clone());
        }
        let file = self.passfile.as_ref()?;
        let host = match &target.host {
            Host::Tcp(h) => h.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        };
        pgpass::lookup(
            file,
            &host,
            matches!(target.host, Host::Unix(_)),
            target.port,
            &self.dbname,
            &self.user,
        )
    }
}

/// libpq's default: the Unix-socket directory, where this platform's server puts it.
fn default_host() -> Host {
    for dir in ["/var/run/postgresql", "/tmp"] {
        if Path::new(dir).is_dir() {
            return Host::Unix(PathBuf::from(dir));
        }
    }
    Host::Tcp("localhost".into())
}

fn expand_home(v: &str, home: Option<&Path>) -> PathBuf {
    match (v.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(v),
    }
}

pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The effective user's name from the password database, as libpq does; `$USER` if that fails.
fn os_user_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok().map(|m| m.uid());
    if let (Some(uid), Ok(passwd)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        for line in passwd.lines() {
            let mut f = line.split(':');
            if let (Some(name), _, Some(id)) = (f.next(), f.next(), f.next()) {
                if id.parse() == Ok(uid) {
                    return Some(name.to_string());
                }
            }
        }
    }
    std::env::var("USER").ok().filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_env(s: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse_with(
            s,
            &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            Some(Path::new("/nonexistent-home")),
        )
    }

    #[test]
    fn explicit_values_win_over_environment() {
        let c = parse_env(
            "host=db.example.com user=alice",
            &[
                ("PGHOST", "other"),
                ("PGUSER", "bob"),
                ("PGPORT", "6543"),
                ("PGDATABASE", "shop"),
                ("PGSSLMODE", "verify-full"),
                ("PGAPPNAME", "ci"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.targets,
            vec![Target {
                host: Host::Tcp("db.example.com".into()),
                hostaddr: None,
                port: 6543
            }]
        );
        assert_eq!(c.user, "alice");
        assert_eq!(c.dbname, "shop");
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.application_name, "ci");
    }

    #[test]
    fn defaults() {
        let c = parse_env("user=u", &[]).unwrap();
        assert_eq!(c.dbname, "u");
        assert_eq!(c.sslmode, SslMode::Prefer);
        assert_eq!(c.channel_binding, ChannelBindingMode::Prefer);
        assert_eq!(c.application_name, "privaci");
        assert_eq!(c.targets[0].port, 5432);
        assert_eq!(c.passfile, Some(PathBuf::from("/nonexistent-home/.pgpass")));
        assert_eq!(c.sslrootcert, None, "no root.crt in the home directory");
    }

    #[test]
    fn unix_sockets_host_lists_and_hostaddr() {
        let c = parse_env("host=/tmp/sock,db2 port=5433,5434 user=u", &[]).unwrap();
        assert_eq!(
            c.targets[0],
            Target {
                host: Host::Unix("/tmp/sock".into()),
                hostaddr: None,
                port: 5433
            }
        );
        assert_eq!(
            c.targets[1],
            Target {
                host: Host::Tcp("db2".into()),
                hostaddr: None,
                port: 5434
            }
        );
        let c = parse_env("postgresql://u@[::1]:5433/db", &[]).unwrap();
        assert_eq!(c.targets[0].host, Host::Tcp("::1".into()));
        let c = parse_env("host=db.internal hostaddr=127.0.0.1 user=u", &[]).unwrap();
        assert_eq!(c.targets[0].hostaddr, Some("127.0.0.1".parse().unwrap()));
        assert!(parse_env("host=a,b,c port=1,2 user=u", &[])
            .unwrap_err()
            .0
            .contains("3 hosts"));
    }

    #[test]
    fn errors_name_the_key_and_its_source() {
        assert_eq!(
            parse_env("hots=x", &[]).unwrap_err().0,
            "invalid connection option \"hots\""
        );
        assert!(parse_env("user=u", &[("PGSSLMODE", "sometimes")])
            .unwrap_err()
            .0
            .contains("PGSSLMODE (environment)"));
        assert!(parse_env("port=99999 user=u", &[])
            .unwrap_err()
            .0
            .contains("invalid port number \"99999\" in \"port\""));
        assert!(parse_env("user=u channel_binding=maybe", &[])
            .unwrap_err()
            .0
            .contains("channel_binding"));
        assert!(parse_env("user=u connect_timeout=soon", &[])
            .unwrap_err()
            .0
            .contains("connect_timeout"));
        assert!(parse_env("user=u hostaddr=not-an-ip", &[])
            .unwrap_err()
            .0
            .contains("hostaddr"));
        assert!(parse_env("user=u service=prod", &[])
            .unwrap_err()
            .0
            .contains("not supported"));
        assert!(parse_env("user=u sslrootcert=system sslmode=require", &[])
            .unwrap_err()
            .0
            .contains("verify-full"));
        assert!(parse_env("user=u sslmode=disable channel_binding=require", &[]).is_err());
    }

    #[test]
    fn connect_timeout_follows_libpq() {
        assert_eq!(
            parse_env("user=u connect_timeout=1", &[])
                .unwrap()
                .connect_timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_env("user=u connect_timeout=10", &[])
                .unwrap()
                .connect_timeout,
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_env("user=u connect_timeout=0", &[])
                .unwrap()
                .connect_timeout,
            None
        );
        assert_eq!(
            parse_env("user=u", &[("PGCONNECT_TIMEOUT", "5")])
                .unwrap()
                .connect_timeout,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = parse_env("user=u password=hunter2", &[]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
