//! TLS as libpq defines `sslmode`: which verifier to use, root and client certificates, the
//! server name (no SNI for IP literals) and the channel-binding hash of the peer certificate.

pub mod end_point;
pub mod verify;
pub mod x509;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::conninfo::{Config, Host, RootCert, SslMode, Target};

pub use end_point::end_point_hash;

/// What is checked about the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// `require` without a root certificate (and `prefer`, `allow`): encryption only.
    None,
    /// `verify-ca`, or `require` with a root certificate: the chain, not the name.
    Chain,
    /// `verify-full`: the chain and the host name.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("root certificate file \"{0}\" does not exist; either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification")]
    RootCertMissing(PathBuf),
    #[error("could not read root certificate file \"{path}\": {reason}")]
    RootCertUnreadable { path: PathBuf, reason: String },
    #[error("could not load the system's trusted root certificates for sslrootcert=system: {0}")]
    SystemRoots(String),
    #[error("could not read client certificate \"{path}\": {reason}")]
    ClientCert { path: PathBuf, reason: String },
    #[error("private key file \"{0}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if owned by root")]
    KeyPermissions(PathBuf),
    #[error("certificate \"{0}\" given with sslcert but no private key found; set sslkey")]
    MissingKey(PathBuf),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready client configuration and what it verifies.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<ClientConfig>,
    pub verification: Verification,
    /// For messages: where the trusted roots came from.
    pub roots: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the TLS client configuration for `cfg`, or `None` for `sslmode=disable`.
pub fn setup(cfg: &Config) -> Result<Option<TlsSetup>, TlsError> {
    let verification = match cfg.sslmode {
        SslMode::Disable => return Ok(None),
        SslMode::VerifyFull => Verification::Full,
        SslMode::VerifyCa => Verification::Chain,
        // libpq: with a root certificate file present, require checks the chain like verify-ca.
        SslMode::Require if cfg.sslrootcert.is_some() => Verification::Chain,
        SslMode::Allow | SslMode::Prefer | SslMode::Require => Verification::None,
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let (builder, roots) = if verification == Verification::None {
        let verifier = Arc::new(verify::AnyCertVerifier::new(provider.clone()));
        (
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier),
            None,
        )
    } else {
        let (store, raw, described) = load_roots(cfg)?;
        // Roots WebPKI cannot take as anchors (version 1) are still checked by libpq's rules.
        let webpki = if store.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?,
            )
        };
        let verifier = verify::LibpqVerifier::new(
            webpki,
            raw,
            provider.clone(),
            verification == Verification::Full,
        );
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        (builder, Some(described))
    };
    let mut config = match &cfg.sslcert {
        Some(cert_path) => {
            let key_path = cfg
                .sslkey
                .clone()
                .ok_or_else(|| TlsError::MissingKey(cert_path.clone()))?;
            let certs = load_certs(cert_path).map_err(|reason| TlsError::ClientCert {
                path: cert_path.clone(),
                reason,
            })?;
            check_key_permissions(&key_path)?;
            let key =
                PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::ClientCert {
                    path: key_path.clone(),
                    reason: e.to_string(),
                })?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = cfg.sslsni;
    Ok(Some(TlsSetup {
        config: Arc::new(config),
        verification,
        roots,
    }))
}

/// The trusted roots: as WebPKI anchors, and as they were read (for libpq's own checks).
type Roots = (RootCertStore, Vec<CertificateDer<'static>>, String);

fn load_roots(cfg: &Config) -> Result<Roots, TlsError> {
    let mut store = RootCertStore::empty();
    match &cfg.sslrootcert {
        Some(RootCert::System) => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let reasons: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(TlsError::SystemRoots(if reasons.is_empty() {
                    "no certificates found".into()
                } else {
                    reasons.join("; ")
                }));
            }
            let raw = found.certs.clone();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::SystemRoots(
                    "none of the system's certificates could be parsed".into(),
                ));
            }
            Ok((store, raw, "the system's trusted roots".into()))
        }
        Some(RootCert::File(path)) => {
            let certs = load_certs(path).map_err(|reason| TlsError::RootCertUnreadable {
                path: path.clone(),
                reason,
            })?;
            for cert in &certs {
                // A root WebPKI refuses (version 1) is kept for libpq's checks; one that is
                // not a certificate at all is an error.
                if store.add(cert.clone()).is_err() && x509::parse(cert).is_none() {
                    return Err(TlsError::RootCertUnreadable {
                        path: path.clone(),
                        reason: "a certificate in it could not be parsed".into(),
                    });
                }
            }
            Ok((store, certs, format!("\"{}\"", path.display())))
        }
        None => {
            let default = crate::conninfo::home_dir()
                .map(|h| h.join(".postgresql/root.crt"))
                .unwrap_or_else(|| PathBuf::from("~/.postgresql/root.crt"));
            Err(TlsError::RootCertMissing(default))
        }
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    if !path.exists() {
        return Err("file does not exist".into());
    }
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificates in the file".into());
    }
    Ok(certs)
}

/// libpq's rule for private keys: 0600 or less, or 0640 or less when owned by root.
fn check_key_permissions(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).map_err(|e| TlsError::ClientCert {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mode = meta.permissions().mode();
    let ok = if meta.uid() == 0 {
        mode & 0o037 == 0
    } else {
        mode & 0o077 == 0
    };
    if ok {
        Ok(())
    } else {
        Err(TlsError::KeyPermissions(path.to_path_buf()))
    }
}

/// The name to verify and to send as SNI: the host name, or the connected address when the
/// host is not a valid DNS name (which only matters without `verify-full`).
pub fn server_name(target: &Target, connected: IpAddr) -> ServerName<'static> {
    match &target.host {
        Host::Tcp(h) => {
            ServerName::try_from(h.clone()).unwrap_or(ServerName::IpAddress(connected.into()))
        }
        Host::Unix(_) => ServerName::IpAddress(connected.into()),
    }
}

/// Turns a handshake failure into a message that says what to do about it.
pub fn explain_handshake_error(err: &std::io::Error, target: &Target, setup: &TlsSetup) -> String {
    let rustls_err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    let roots = setup.roots.as_deref().unwrap_or("the configured roots");
    match rustls_err {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => format!(
            "server certificate for {target} is not trusted: no certificate in {roots} signed it; set sslrootcert to the file holding the CA that issued the server's certificate"
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => {
            let presented = match rustls_err {
                Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. }))
                    if !presented.is_empty() =>
                {
                    format!(" (it is valid for: {})", presented.join(", "))
                }
                _ => " (neither its subjectAltNames nor, when it has none, its common name match)".to_string(),
            };
            format!(
                "server certificate does not match host name \"{}\"{presented}; connect using a name the certificate lists, or use sslmode=verify-ca to check the chain only",
                target.host
            )
        }
        Some(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => format!("server certificate for {target} has expired"),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        )) => format!("server certificate for {target} is not valid yet (check the clocks)"),
        Some(rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose)) => format!(
            "server certificate for {target} may not be used by a server: its key usage or extended key usage (for example clientAuth only) excludes it; the server needs a certificate issued for TLS servers"
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature | CertificateError::BadEncoding,
        )) => format!(
            "server certificate for {target} is malformed or its signature does not verify; check the server's ssl_cert_file"
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::Revoked)) => {
            format!("server certificate for {target} has been revoked")
        }
        Some(rustls::Error::InvalidCertificate(other)) => format!(
            "server certificate for {target} was refused ({}); check that sslrootcert ({roots}) holds the CA that issued it",
            certificate_problem(other)
        ),
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("the server ended the TLS handshake with alert {alert:?}: if it requires a client certificate, set sslcert and sslkey")
        }
        Some(e) => format!("TLS handshake with {target} failed: {e}"),
        None => format!("TLS handshake with {target} failed: {err}"),
    }
}

/// A certificate error WebPKI reports as a debug name, said in words.
fn certificate_problem(e: &CertificateError) -> String {
    let debug = format!("{e:?}");
    let words = [
        (
            "CaUsedAsEndEntity",
            "it is a CA certificate presented as the server's own, and it is not in the root file",
        ),
        (
            "UnsupportedCertVersion",
            "it is a version 1 certificate not signed by a certificate in the root file",
        ),
        (
            "EndEntityUsedAsCa",
            "a server certificate was used to sign another",
        ),
        (
            "UnsupportedSignatureAlgorithm",
            "it is signed with an algorithm privaci does not support",
        ),
        ("UnknownIssuer", "no trusted certificate signed it"),
        (
            "PathLenConstraintViolated",
            "its chain is longer than a CA allows",
        ),
        (
            "NameConstraintViolation",
            "a CA's name constraints exclude it",
        ),
    ];
    words
        .iter()
        .find(|(k, _)| debug.contains(k))
        .map(|(_, w)| w.to_string())
        .unwrap_or_else(|| "the certificate could not be verified".to_string())
}
