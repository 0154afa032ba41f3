//! Server-certificate verifiers for the sslmodes: `verify-full` and `verify-ca` accept what
//! libpq accepts (WebPKI first, then libpq's own rules where they differ); `require` (without
//! a root certificate) accepts any certificate but still checks the handshake signatures, so
//! the session is at least bound to the certificate whose hash channel binding uses.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use super::x509;

/// `verify-full` and `verify-ca` as libpq decides them. WebPKI (rustls) checks first; where
/// it refuses what OpenSSL, and so libpq, accepts, privaci checks by libpq's rules itself:
/// - a host name only in the subject's common name, when the certificate has no DNS or IP
///   subjectAltName (libpq falls back to the CN then);
/// - a certificate that is itself in the root file (a self-signed server certificate used as
///   `sslrootcert`, which OpenSSL's `req -x509` marks CA:TRUE);
/// - a version 1 certificate (what `openssl x509 -req` makes), trusted because it is in the
///   root file or signed directly by a certificate that is.
///
/// Either way the certificate must be within its validity period, allowed for servers by its
/// key usages, and (for `verify-full`) valid for the host name: a wrong host, an untrusted
/// issuer, an expired certificate or a client-only key stay refused.
#[derive(Debug)]
pub struct LibpqVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    check_name: bool,
}

impl LibpqVerifier {
    pub fn new(
        inner: Option<Arc<WebPkiServerVerifier>>,
        roots: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
        check_name: bool,
    ) -> Self {
        LibpqVerifier {
            inner,
            roots,
            provider,
            check_name,
        }
    }

    /// libpq's checks of a certificate WebPKI would not take.
    fn libpq_check(
        &self,
        der: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let cert =
            x509::parse(der).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let trusted = self.roots.iter().any(|r| r.as_ref() == der.as_ref())
            || (intermediates.is_empty()
                && self.roots.iter().any(|r| {
                    x509::parse(r).is_some_and(|root| {
                        root.subject == cert.issuer && self.signed_by(&cert, &root)
                    })
                }));
        if !trusted {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        }
        let now = now.as_secs() as i64;
        if now > cert.not_after {
            return Err(Error::InvalidCertificate(CertificateError::Expired));
        }
        if now < cert.not_before {
            return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
        }
        if let Some(ekus) = &cert.extended_key_usage {
            if !ekus
                .iter()
                .any(|o| *o == x509::EKU_SERVER_AUTH || *o == x509::EKU_ANY)
            {
                return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
            }
        }
        // digitalSignature, keyEncipherment or keyAgreement, as OpenSSL asks of a server.
        if cert.key_usage.is_some_and(|ku| ku & 0b1_0101 == 0) {
            return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
        if self.check_name && !names_match(&cert, server_name) {
            return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
        }
        Ok(())
    }

    /// `cert`'s signature checks with `issuer`'s key.
    fn signed_by(&self, cert: &x509::Cert<'_>, issuer: &x509::Cert<'_>) -> bool {
        self.provider
            .signature_verification_algorithms
            .all
            .iter()
            .filter(|a| {
                a.signature_alg_id().as_ref() == cert.signature_algorithm
                    && a.public_key_alg_id().as_ref() == issuer.key_algorithm
            })
            .any(|a| {
                a.verify_signature(issuer.key, cert.tbs, cert.signature)
                    .is_ok()
            })
    }

    /// A handshake signature made with the key of a certificate WebPKI cannot parse.
    fn verify_with_parsed_key(
        &self,
        message: &[u8],
        der: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let cert =
            x509::parse(der).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let algorithms = self
            .provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        let ok = algorithms
            .iter()
            .filter(|a| a.public_key_alg_id().as_ref() == cert.key_algorithm)
            .any(|a| {
                a.verify_signature(cert.key, message, dss.signature())
                    .is_ok()
            });
        if ok {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }
}

/// libpq: the DNS and IP subjectAltNames if there are any, else the common name.
fn names_match(cert: &x509::Cert<'_>, server_name: &ServerName<'_>) -> bool {
    let host = match server_name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => return false,
    };
    if !cert.dns_names.is_empty() || !cert.ip_addresses.is_empty() {
        let ip_ok = match server_name {
            ServerName::IpAddress(ip) => {
                let addr = std::net::IpAddr::from(*ip);
                let bytes = match addr {
                    std::net::IpAddr::V4(a) => a.octets().to_vec(),
                    std::net::IpAddr::V6(a) => a.octets().to_vec(),
                };
                cert.ip_addresses.contains(&bytes)
            }
            _ => false,
        };
        return ip_ok || cert.dns_names.iter().any(|n| x509::name_matches(n, &host));
    }
    cert.common_names
        .iter()
        .any(|n| x509::name_matches(n, &host))
}

/// WebPKI refusals libpq's own checks may overturn.
fn libpq_may_accept(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(
            CertificateError::Other(_)
                | CertificateError::UnknownIssuer
                | CertificateError::BadEncoding
        )
    )
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let first = match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        };
        match first {
            Ok(v) => Ok(v),
            // WebPKI checks the chain before the name: a name error means the chain is good.
            // libpq then looks at the common name when there is no DNS or IP subjectAltName.
            Err(
                e @ Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ),
            ) => {
                let by_common_name =
                    || x509::parse(end_entity).is_some_and(|c| names_match(&c, server_name));
                if !self.check_name || by_common_name() {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(e)
                }
            }
            Err(e) if libpq_may_accept(&e) => {
                // libpq's reason when it refuses too: not trusted, the dates, the purpose,
                // the name.
                self.libpq_check(end_entity, intermediates, server_name, now)
                    .map(|()| ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
            .or_else(|_| self.verify_with_parsed_key(m, c, d))
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
            .or_else(|_| self.verify_with_parsed_key(m, c, d))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug)]
pub struct AnyCertVerifier {
    provider: Arc<CryptoProvider>,
}

impl AnyCertVerifier {
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        AnyCertVerifier { provider }
    }
}

impl ServerCertVerifier for AnyCertVerifier {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    /// The fallback's own signature check agrees with the key types rcgen (ECDSA P-256) and
    /// openssl (RSA, covered by tests/tls_libpq.rs) make.
    #[test]
    fn a_signature_checks_with_its_issuers_key_only() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "a CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let other_key = KeyPair::generate().unwrap();
        let other_cert = ca.self_signed(&other_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_cert = leaf
            .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let v = LibpqVerifier::new(
            None,
            vec![ca_cert.der().clone()],
            Arc::new(rustls::crypto::ring::default_provider()),
            true,
        );
        let (leaf_p, ca_p, other_p) = (
            x509::parse(leaf_cert.der()).unwrap(),
            x509::parse(ca_cert.der()).unwrap(),
            x509::parse(other_cert.der()).unwrap(),
        );
        assert!(v.signed_by(&leaf_p, &ca_p));
        // Same subject, another key: the issuer name alone does not make it trusted.
        assert!(!v.signed_by(&leaf_p, &other_p));
        let host = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        assert!(v.libpq_check(leaf_cert.der(), &[], &host, now).is_ok());
        let wrong = ServerName::try_from("db.example.com").unwrap();
        assert!(matches!(
            v.libpq_check(leaf_cert.der(), &[], &wrong, now),
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
        ));
        let untrusted = LibpqVerifier::new(
            None,
            vec![other_cert.der().clone()],
            Arc::new(rustls::crypto::ring::default_provider()),
            true,
        );
        assert!(matches!(
            untrusted.libpq_check(leaf_cert.der(), &[], &host, now),
            Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
        ));
    }
}
