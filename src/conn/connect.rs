//! Connecting as libpq does: each host in turn, each of its addresses in turn; the sslmode
//! decides TLS (with libpq's allow/prefer fallbacks); then startup and authentication.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use super::{unexpected, CancelToken, Connection, SessionInfo, Stream, TlsInfo, READ_BUFFER};
use crate::auth::scram::{ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
use crate::auth::{md5, AuthMethod};
use crate::conninfo::{ChannelBindingMode, Config, Host, SslMode, Target};
use crate::error::{Error, ErrorKind};
use crate::tls::{self, TlsSetup};
use crate::wire::backend::{Authentication, MAX_MESSAGE_LEN, MAX_STARTUP_MESSAGE_LEN};
use crate::wire::{frontend, DbError, Message};

/// Connects to the first server in `cfg` that accepts us. Each host gets `connect_timeout`.
pub async fn connect(cfg: &Config) -> Result<Connection, Error> {
    connect_with_nonce(cfg, None).await
}

/// As `connect`, with the SCRAM client nonce fixed: replays of recorded exchanges use it.
pub async fn connect_with_nonce(
    cfg: &Config,
    scram_nonce: Option<&str>,
) -> Result<Connection, Error> {
    let tls = tls::setup(cfg)?;
    let mut failures = Vec::new();
    for target in &cfg.targets {
        let attempt = connect_target(cfg, target, tls.as_ref(), scram_nonce);
        let result = match cfg.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Connect,
                        format!(
                            "connection to {target} timed out after {} s (connect_timeout)",
                            limit.as_secs()
                        ),
                    ))
                }),
            None => attempt.await,
        };
        match result {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                tracing::debug!("connection to {target} failed: {e}");
                failures.push(e);
            }
        }
    }
    Err(combine(failures))
}

/// One failure is reported as it is; several become one error listing each host's.
fn combine(mut failures: Vec<Error>) -> Error {
    if failures.len() == 1 {
        return failures.remove(0);
    }
    let list: Vec<String> = failures.iter().map(|e| format!("  - {e}")).collect();
    let last = failures
        .pop()
        .unwrap_or_else(|| Error::new(ErrorKind::Config, "no host to connect to"));
    let mut combined = last;
    combined.set_message(format!(
        "could not connect to any of {} hosts:\n{}",
        list.len(),
        list.join("\n")
    ));
    combined
}

async fn connect_target(
    cfg: &Config,
    target: &Target,
    tls: Option<&TlsSetup>,
    nonce: Option<&str>,
) -> Result<Connection, Error> {
    match &target.host {
        // libpq never uses TLS on a Unix socket: the kernel already protects it.
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{}", target.port));
            let sock = UnixStream::connect(&path).await.map_err(|e| {
                Error::new(
                    ErrorKind::Connect,
                    format!("could not connect to {target}: {e}; is the server running locally and accepting connections on that socket?"),
                )
            })?;
            startup(cfg, target, None, Stream::Unix(sock), None, nonce).await
        }
        Host::Tcp(name) => {
            let addrs: Vec<SocketAddr> = match target.hostaddr {
                Some(ip) => vec![SocketAddr::new(ip, target.port)],
                None => tokio::net::lookup_host((name.as_str(), target.port))
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Connect,
                            format!("could not resolve host name \"{name}\": {e}"),
                        )
                    })?
                    .collect(),
            };
            let mut last = None;
            for addr in addrs {
                match connect_addr(cfg, target, addr, tls, nonce).await {
                    Ok(conn) => return Ok(conn),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Connect,
                    format!("host name \"{name}\" has no addresses"),
                )
            }))
        }
    }
}

/// `28000` is what pg_hba.conf rejections carry ("no pg_hba.conf entry"): the case where
/// libpq retries with the other TLS choice under allow/prefer. A wrong password (28P01) is
/// not retried, so a password never goes out a second time in a weaker channel.
fn rejected_by_hba(e: &Error) -> bool {
    e.code() == Some("28000")
}

async fn connect_addr(
    cfg: &Config,
    target: &Target,
    addr: SocketAddr,
    tls: Option<&TlsSetup>,
    nonce: Option<&str>,
) -> Result<Connection, Error> {
    let Some(tls) = tls else {
        return attempt(cfg, target, addr, None, nonce).await;
    };
    match cfg.sslmode {
        SslMode::Allow => match attempt(cfg, target, addr, None, nonce).await {
            Err(e) if rejected_by_hba(&e) => {
                tracing::debug!(
                    "plaintext connection rejected ({e}); retrying with TLS (sslmode=allow)"
                );
                attempt(cfg, target, addr, Some(tls), nonce).await
            }
            other => other,
        },
        SslMode::Prefer => match attempt(cfg, target, addr, Some(tls), nonce).await {
            Err(e) if rejected_by_hba(&e) || e.kind() == ErrorKind::Tls => {
                tracing::debug!(
                    "TLS connection failed ({e}); retrying without TLS (sslmode=prefer)"
                );
                attempt(cfg, target, addr, None, nonce).await
            }
            other => other,
        },
        _ => attempt(cfg, target, addr, Some(tls), nonce).await,
    }
}

async fn attempt(
    cfg: &Config,
    target: &Target,
    addr: SocketAddr,
    tls: Option<&TlsSetup>,
    nonce: Option<&str>,
) -> Result<Connection, Error> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| {
        Error::new(
            ErrorKind::Connect,
            format!(
                "could not connect to {target} at {addr}: {e}; is the server running on that host and accepting TCP/IP connections on port {}?",
                addr.port()
            ),
        )
    })?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return startup(cfg, target, Some(addr), Stream::Tcp(tcp), None, nonce).await;
    };

    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    let io_err = |e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            format!("connection to {target} lost during TLS negotiation: {e}"),
        )
    };
    tcp.write_all(&request).await.map_err(io_err)?;
    // Read what is there rather than one byte, to see whether the server (or someone in the
    // middle) sent more than the one-byte answer: bytes after 'S' would be read as if they
    // had come through TLS (CVE-2021-23222).
    let mut answer = [0u8; 64];
    let n = tcp.read(&mut answer).await.map_err(io_err)?;
    if n == 0 {
        return Err(Error::new(
            ErrorKind::Io,
            format!("server at {target} closed the connection in answer to the TLS request"),
        ));
    }
    if n > 1 && matches!(answer[0], b'S' | b'N') {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!("received unencrypted data after the TLS response from {target}: possible man-in-the-middle attack; refusing to continue"),
        ));
    }
    match answer[0] {
        b'S' => {
            let name = tls::server_name(target, addr.ip());
            let stream = TlsConnector::from(tls.config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| Error::new(ErrorKind::Tls, tls::explain_handshake_error(&e, target, tls)))?;
            let (_, session) = stream.get_ref();
            let info = TlsInfo {
                version: match session.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
                    Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
                    Some(other) => format!("{other:?}"),
                    None => "unknown".into(),
                },
                cipher: session.negotiated_cipher_suite().map_or_else(|| "unknown".into(), |c| format!("{:?}", c.suite())),
                verification: tls.verification,
            };
            let cb_hash = session.peer_certificates().and_then(|certs| certs.first()).and_then(|c| tls::end_point_hash(c));
            let conn = startup(cfg, target, Some(addr), Stream::Tls(Box::new(stream)), Some((info, cb_hash)), nonce).await?;
            Ok(conn)
        }
        b'N' => {
            if matches!(cfg.sslmode, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull) {
                return Err(Error::new(
                    ErrorKind::Tls,
                    format!(
                        "server at {target} does not support TLS, but sslmode={} requires it; enable ssl on the server or use sslmode=prefer",
                        cfg.sslmode.as_str()
                    ),
                ));
            }
            startup(cfg, target, Some(addr), Stream::Tcp(tcp), None, nonce).await
        }
        b'E' => Err(Error::new(
            ErrorKind::Protocol,
            format!("server at {target} answered the TLS request with an error: it may be too old to speak protocol 3.0"),
        )),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("unexpected answer 0x{other:02x} to the TLS request from {target}: is it a PostgreSQL server?"),
        )),
    }
}

async fn startup(
    cfg: &Config,
    target: &Target,
    addr: Option<SocketAddr>,
    stream: Stream,
    tls: Option<(TlsInfo, Option<Vec<u8>>)>,
    nonce: Option<&str>,
) -> Result<Connection, Error> {
    let (tls_info, cb_hash) = match tls {
        Some((info, hash)) => (Some(info), hash),
        None => (None, None),
    };
    let mut conn = Connection {
        stream,
        read_buf: BytesMut::with_capacity(READ_BUFFER),
        write_buf: BytesMut::with_capacity(1024),
        parameters: HashMap::new(),
        info: SessionInfo {
            target: target.clone(),
            auth_method: AuthMethod::None,
            tls: tls_info,
            protocol_minor: None,
        },
        cancel: CancelToken {
            target: target.clone(),
            addr,
            process_id: 0,
            secret_key: 0,
        },
        status: b'I',
        pending: super::Pending::None,
        round_trips: None,
        awaiting: false,
    };
    let mut params = vec![
        ("user", cfg.user.as_str()),
        ("database", cfg.dbname.as_str()),
        ("application_name", cfg.application_name.as_str()),
        ("client_encoding", "UTF8"),
    ];
    if let Some(options) = &cfg.options {
        params.push(("options", options));
    }
    frontend::startup(&params, &mut conn.write_buf)?;
    conn.flush().await?;

    authenticate(&mut conn, cfg, cb_hash, nonce).await?;

    loop {
        match conn.recv_limited(MAX_MESSAGE_LEN).await? {
            Message::BackendKeyData {
                process_id,
                secret_key,
            } => {
                conn.cancel.process_id = process_id;
                conn.cancel.secret_key = secret_key;
            }
            Message::ReadyForQuery { status } => {
                conn.status = status;
                tracing::debug!(target = %conn.info.target, method = %conn.info.auth_method, "connected");
                return Ok(conn);
            }
            Message::ErrorResponse(db) => return Err(server_error(cfg, target, db)),
            Message::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            } => note_negotiation(&mut conn, newest_minor, &unrecognized),
            other => return Err(unexpected(&other, "startup")),
        }
    }
}

fn note_negotiation(conn: &mut Connection, newest_minor: i32, unrecognized: &[String]) {
    // We ask for 3.0 with no protocol options, so any 3.x answer leaves us compatible.
    tracing::debug!(
        newest_minor,
        ?unrecognized,
        "server negotiated the protocol version"
    );
    conn.info.protocol_minor = Some(newest_minor);
}

async fn authenticate(
    conn: &mut Connection,
    cfg: &Config,
    cb_hash: Option<Vec<u8>>,
    nonce: Option<&str>,
) -> Result<(), Error> {
    let target = conn.info.target.clone();
    loop {
        let auth = match conn.recv_limited(MAX_STARTUP_MESSAGE_LEN).await? {
            Message::Authentication(a) => a,
            Message::ErrorResponse(db) => return Err(server_error(cfg, &target, db)),
            Message::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            } => {
                note_negotiation(conn, newest_minor, &unrecognized);
                continue;
            }
            other => return Err(unexpected(&other, "authentication")),
        };
        match auth {
            Authentication::Ok => {
                if cfg.channel_binding == ChannelBindingMode::Require
                    && conn.info.auth_method != AuthMethod::ScramSha256Plus
                {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        format!(
                            "channel binding required, but server {target} authenticated the client without channel binding (method: {}); the server must use scram-sha-256 for this user over TLS",
                            conn.info.auth_method
                        ),
                    ));
                }
                return Ok(());
            }
            Authentication::CleartextPassword | Authentication::Md5Password { .. } => {
                let (method, name) = match auth {
                    Authentication::CleartextPassword => {
                        (AuthMethod::Cleartext, "a cleartext password")
                    }
                    _ => (AuthMethod::Md5, "an MD5 password"),
                };
                if cfg.channel_binding == ChannelBindingMode::Require {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        format!("channel binding required, but server {target} requested {name}, which cannot bind to the channel"),
                    ));
                }
                let password = password(cfg, &target)?;
                match auth {
                    Authentication::Md5Password { salt } => {
                        let hashed =
                            md5::hash_password(cfg.user.as_bytes(), password.as_bytes(), salt);
                        frontend::password(hashed.as_bytes(), &mut conn.write_buf)?;
                    }
                    _ => frontend::password(password.as_bytes(), &mut conn.write_buf)?,
                }
                conn.flush().await?;
                conn.info.auth_method = method;
            }
            Authentication::Sasl { mechanisms } => {
                scram(conn, cfg, &mechanisms, cb_hash.clone(), nonce).await?;
            }
            Authentication::SaslContinue { .. } | Authentication::SaslFinal { .. } => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "server sent a SASL message before SASL authentication began",
                ));
            }
            Authentication::Unsupported { code } => {
                let name = match code {
                    2 => "Kerberos V5",
                    6 => "SCM credential",
                    7 | 8 => "GSSAPI",
                    9 => "SSPI",
                    _ => "an unknown",
                };
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!("server {target} requested {name} authentication, which privaci does not support; use a password (scram-sha-256) or certificate method in pg_hba.conf for this user"),
                ));
            }
        }
    }
}

async fn scram(
    conn: &mut Connection,
    cfg: &Config,
    mechanisms: &[String],
    cb_hash: Option<Vec<u8>>,
    nonce: Option<&str>,
) -> Result<(), Error> {
    let target = conn.info.target.clone();
    let plus_offered = mechanisms.iter().any(|m| m == SCRAM_SHA_256_PLUS);
    let plain_offered = mechanisms.iter().any(|m| m == SCRAM_SHA_256);
    let in_tls = conn.info.tls.is_some();
    let binding = match cfg.channel_binding {
        ChannelBindingMode::Disable => ChannelBinding::Unsupported,
        _ if !in_tls => ChannelBinding::Unsupported,
        // Saying "y" when the server offered -PLUS would read as a downgrade attack to it, so
        // without a usable certificate hash we say "n".
        _ if plus_offered => cb_hash.map_or(
            ChannelBinding::Unsupported,
            ChannelBinding::TlsServerEndPoint,
        ),
        _ => ChannelBinding::Unrequested,
    };
    let bound = matches!(binding, ChannelBinding::TlsServerEndPoint(_));
    if cfg.channel_binding == ChannelBindingMode::Require && !bound {
        let why = if !in_tls {
            "the connection does not use TLS (a Unix socket, or the server refused TLS)".to_string()
        } else if !plus_offered {
            "the server did not offer SCRAM-SHA-256-PLUS".to_string()
        } else {
            "the server certificate's signature algorithm has no hash defined for tls-server-end-point".to_string()
        };
        return Err(Error::new(ErrorKind::Auth, format!("channel binding required by channel_binding=require, but not possible with {target}: {why}")));
    }
    if !bound && !plain_offered {
        return Err(Error::new(
            ErrorKind::Auth,
            format!(
                "server {target} offered no SASL mechanism privaci supports (offered: {})",
                mechanisms.join(", ")
            ),
        ));
    }
    let password = password(cfg, &target)?;
    let mut scram = match nonce {
        Some(n) => ScramSha256::with_nonce(password.as_bytes(), binding, n),
        None => ScramSha256::new(password.as_bytes(), binding),
    };
    frontend::sasl_initial_response(scram.mechanism(), scram.message(), &mut conn.write_buf)?;
    conn.flush().await?;
    let auth_err = |e: crate::auth::scram::ScramError| {
        Error::new(
            ErrorKind::Auth,
            format!("SCRAM authentication with {target} failed: {e}"),
        )
    };
    match conn.recv_limited(MAX_STARTUP_MESSAGE_LEN).await? {
        Message::Authentication(Authentication::SaslContinue { data }) => {
            scram.update(&data).map_err(auth_err)?
        }
        Message::ErrorResponse(db) => return Err(server_error(cfg, &target, db)),
        other => return Err(unexpected(&other, "SCRAM authentication")),
    }
    frontend::sasl_response(scram.message(), &mut conn.write_buf);
    conn.flush().await?;
    match conn.recv_limited(MAX_STARTUP_MESSAGE_LEN).await? {
        Message::Authentication(Authentication::SaslFinal { data }) => {
            scram.finish(&data).map_err(auth_err)?
        }
        Message::ErrorResponse(db) => return Err(server_error(cfg, &target, db)),
        other => return Err(unexpected(&other, "SCRAM authentication")),
    }
    conn.info.auth_method = if bound {
        AuthMethod::ScramSha256Plus
    } else {
        AuthMethod::ScramSha256
    };
    Ok(())
}

fn password(cfg: &Config, target: &Target) -> Result<String, Error> {
    cfg.password_for(target).ok_or_else(|| {
        let passfile = cfg.passfile.as_ref().map_or("~/.pgpass".into(), |p| p.display().to_string());
        Error::new(
            ErrorKind::Auth,
            format!(
                "server {target} asked for a password for user \"{}\", but none was given: set password in the connection string, PGPASSWORD, or a line in {passfile}",
                cfg.user
            ),
        )
    })
}

/// A server error while connecting, with what the user can do about the common ones.
fn server_error(cfg: &Config, target: &Target, db: Box<DbError>) -> Error {
    let hint = match db.code.as_str() {
        "28P01" => format!(
            "check the password for user \"{}\" (from the connection string, PGPASSWORD or {})",
            cfg.user,
            cfg.passfile.as_ref().map_or("~/.pgpass".into(), |p| p.display().to_string())
        ),
        // 28000 covers more than pg_hba.conf: a missing role, and channel binding the
        // server could not verify, carry it too.
        _ if db.message.contains("channel binding") => "the server could not verify channel binding: a TLS proxy or pooler between privaci and the server presents another certificate; connect to the server itself, or set channel_binding=disable if the path is trusted".into(),
        "28000" if db.message.starts_with("role ") && db.message.ends_with("does not exist") => format!(
            "no role \"{}\" on this server: check user in the connection string or PGUSER",
            cfg.user
        ),
        "28000" => "the server's pg_hba.conf has no entry for this address, user, database and TLS choice; if the server only accepts TLS use sslmode=require or stricter, otherwise ask its administrator".into(),
        "3D000" => "check dbname in the connection string or PGDATABASE".into(),
        "53300" => "the server has no free connection slots; retry later or lower --jobs".into(),
        "57P03" => "the server is starting up or shutting down; retry in a moment".into(),
        _ => String::new(),
    };
    let mut message = format!(
        "connection to {target} failed: {}: {}",
        db.severity, db.message
    );
    if let Some(detail) = &db.detail {
        message.push_str(&format!("\nDETAIL: {detail}"));
    }
    if !hint.is_empty() {
        message.push_str(&format!("\nHINT: {hint}"));
    }
    Error::db(db, message)
}
