//! The `tls-server-end-point` channel binding (RFC 5929 section 4.1): a hash of the server's
//! certificate, with the hash function taken from the certificate's signature algorithm
//! (SHA-256 when that algorithm uses MD5 or SHA-1).

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// The channel-binding data for a DER certificate, or `None` when its signature algorithm
/// names no usable hash (RSASSA-PSS, Ed25519...); PostgreSQL cannot bind to those either.
pub fn end_point_hash(cert_der: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_algorithm_oid(cert_der)?;
    Some(match hash_for(oid)? {
        Hash::Sha224 => Sha224::digest(cert_der).to_vec(),
        Hash::Sha256 => Sha256::digest(cert_der).to_vec(),
        Hash::Sha384 => Sha384::digest(cert_der).to_vec(),
        Hash::Sha512 => Sha512::digest(cert_der).to_vec(),
    })
}

fn hash_for(oid: &[u8]) -> Option<Hash> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]; // 1.2.840.10045.4.1
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03]; // 1.2.840.10045.4.3
    const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03]; // 1.2.840.10040.4.3
    const DSA_SHA2: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03]; // 2.16.840.1.101.3.4.3
    if let Some(rest) = oid.strip_prefix(RSA) {
        return match rest {
            [4] | [5] => Some(Hash::Sha256), // md5WithRSA, sha1WithRSA: upgraded to SHA-256
            [11] => Some(Hash::Sha256),
            [12] => Some(Hash::Sha384),
            [13] => Some(Hash::Sha512),
            [14] => Some(Hash::Sha224),
            _ => None,
        };
    }
    if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        return Some(Hash::Sha256);
    }
    if let Some(rest) = oid.strip_prefix(ECDSA_SHA2) {
        return match rest {
            [1] => Some(Hash::Sha224),
            [2] => Some(Hash::Sha256),
            [3] => Some(Hash::Sha384),
            [4] => Some(Hash::Sha512),
            _ => None,
        };
    }
    if let Some(rest) = oid.strip_prefix(DSA_SHA2) {
        return match rest {
            [1] => Some(Hash::Sha224),
            [2] => Some(Hash::Sha256),
            _ => None,
        };
    }
    None
}

/// Reads one DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }`
fn signature_algorithm_oid(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (tag, cert_body, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_tbs) = tlv(cert_body)?;
    let (tag, alg, _) = tlv(after_tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, _) = tlv(alg)?;
    (tag == OID).then_some(oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps an algorithm OID in a minimal certificate-shaped DER structure.
    fn fake_cert(oid: &[u8]) -> Vec<u8> {
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x01];
        let mut alg = vec![0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        let mut alg_seq = vec![0x30, alg.len() as u8];
        alg_seq.extend(alg);
        let mut body = tbs.to_vec();
        body.extend(alg_seq);
        body.extend([0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, body.len() as u8];
        cert.extend(body);
        cert
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        let sha1_rsa = fake_cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 5]);
        assert_eq!(
            end_point_hash(&sha1_rsa).unwrap(),
            Sha256::digest(&sha1_rsa).to_vec()
        );
        let md5_rsa = fake_cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 4]);
        assert_eq!(
            end_point_hash(&md5_rsa).unwrap(),
            Sha256::digest(&md5_rsa).to_vec()
        );
        let sha384_rsa = fake_cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 12]);
        assert_eq!(
            end_point_hash(&sha384_rsa).unwrap(),
            Sha384::digest(&sha384_rsa).to_vec()
        );
        let sha512_ecdsa = fake_cert(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 4]);
        assert_eq!(end_point_hash(&sha512_ecdsa).unwrap().len(), 64);
        let ed25519 = fake_cert(&[0x2b, 0x65, 0x70]);
        assert_eq!(end_point_hash(&ed25519), None);
        assert_eq!(end_point_hash(b"\x30\x82\xff"), None, "truncated DER");
        assert_eq!(end_point_hash(b""), None);
    }

    #[test]
    fn real_certificates() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["db.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            end_point_hash(cert.der()).unwrap(),
            Sha384::digest(cert.der()).to_vec()
        );
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["db.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            end_point_hash(cert.der()).unwrap(),
            Sha256::digest(cert.der()).to_vec()
        );
    }
}
