//! Just enough X.509 (DER) to check what WebPKI refuses but libpq accepts: version 1
//! certificates, a self-signed certificate that is its own root, and a host name found only
//! in the subject's common name. Read-only views into the certificate bytes; anything
//! malformed is `None`, never a panic.

/// A certificate's fields, borrowed from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert<'a> {
    /// The signed part, tag and length included.
    pub tbs: &'a [u8],
    /// The signature's AlgorithmIdentifier, without its SEQUENCE tag and length.
    pub signature_algorithm: &'a [u8],
    pub signature: &'a [u8],
    /// 0 for v1, 2 for v3.
    pub version: u8,
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    /// The subject key's AlgorithmIdentifier, without its SEQUENCE tag and length.
    pub key_algorithm: &'a [u8],
    pub key: &'a [u8],
    pub common_names: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<Vec<u8>>,
    /// Extended key usage OIDs (content bytes), if the extension is there.
    pub extended_key_usage: Option<Vec<&'a [u8]>>,
    /// Key usage bits (bit 0 = digitalSignature, as in the DER BIT STRING), if there.
    pub key_usage: Option<u16>,
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_EKU: &[u8] = &[0x55, 0x1d, 0x25];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-kp-serverAuth and anyExtendedKeyUsage.
pub const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
pub const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// One TLV: (tag, content, whole TLV, rest).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some((tag, &rest[..len], &input[..header + len], &rest[len..]))
}

/// The content of a TLV with `tag`, and the rest.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, _, rest) = tlv(input)?;
    (t == tag).then_some((content, rest))
}

/// Parses a DER certificate.
pub fn parse(der: &[u8]) -> Option<Cert<'_>> {
    let (cert, _) = expect(der, 0x30)?;
    let (tag, tbs_content, tbs, rest) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (signature_algorithm, rest) = expect(rest, 0x30)?;
    let (sig_bits, _) = expect(rest, 0x03)?;
    let signature = sig_bits.get(1..)?;

    let mut t = tbs_content;
    let mut version = 0;
    if t.first() == Some(&0xa0) {
        let (explicit, rest) = expect(t, 0xa0)?;
        let (v, _) = expect(explicit, 0x02)?;
        version = *v.last()?;
        t = rest;
    }
    let (_serial, t) = expect(t, 0x02)?;
    let (_alg, t) = expect(t, 0x30)?;
    let (_, _, issuer, t) = tlv(t)?;
    let (validity, t) = expect(t, 0x30)?;
    let (_, subject_content, subject, t) = tlv(t)?;
    let (spki, mut t) = expect(t, 0x30)?;
    let (key_algorithm, spki_rest) = expect(spki, 0x30)?;
    let (key_bits, _) = expect(spki_rest, 0x03)?;

    let (nb_tag, nb, _, vrest) = tlv(validity)?;
    let (na_tag, na, _, _) = tlv(vrest)?;
    let mut cert = Cert {
        tbs,
        signature_algorithm,
        signature,
        version,
        issuer,
        subject,
        not_before: time(nb_tag, nb)?,
        not_after: time(na_tag, na)?,
        key_algorithm,
        key: key_bits.get(1..)?,
        common_names: common_names(subject_content),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        extended_key_usage: None,
        key_usage: None,
    };
    // Optional issuer and subject unique IDs ([1], [2]), then extensions ([3]).
    while let Some((tag, content, _, rest)) = tlv(t) {
        if tag == 0xa3 {
            extensions(content, &mut cert)?;
        }
        t = rest;
    }
    Some(cert)
}

fn extensions<'a>(content: &'a [u8], cert: &mut Cert<'a>) -> Option<()> {
    let (mut list, _) = expect(content, 0x30)?;
    while !list.is_empty() {
        let (ext, rest) = expect(list, 0x30)?;
        list = rest;
        let (oid, mut e) = expect(ext, 0x06)?;
        if e.first() == Some(&0x01) {
            e = expect(e, 0x01)?.1; // critical
        }
        let (value, _) = expect(e, 0x04)?;
        match oid {
            OID_SAN => {
                let (mut names, _) = expect(value, 0x30)?;
                while let Some((tag, name, _, rest)) = tlv(names) {
                    match tag {
                        0x82 => cert
                            .dns_names
                            .push(String::from_utf8_lossy(name).into_owned()),
                        0x87 => cert.ip_addresses.push(name.to_vec()),
                        _ => {}
                    }
                    names = rest;
                }
            }
            OID_EKU => {
                let (mut oids, _) = expect(value, 0x30)?;
                let mut out = Vec::new();
                while let Some((tag, o, _, rest)) = tlv(oids) {
                    if tag == 0x06 {
                        out.push(o);
                    }
                    oids = rest;
                }
                cert.extended_key_usage = Some(out);
            }
            OID_KEY_USAGE => {
                let (bits, _) = expect(value, 0x03)?;
                let b0 = *bits.get(1).unwrap_or(&0) as u16;
                let b1 = *bits.get(2).unwrap_or(&0) as u16;
                // DER bit 0 is the high bit of the first byte: reversed into bit 0 here.
                let raw = (b0 << 8) | b1;
                cert.key_usage =
                    Some((0..16).fold(0, |acc, i| acc | (((raw >> (15 - i)) & 1) << i)));
            }
            _ => {}
        }
    }
    Some(())
}

/// Every commonName in a Name (RDNSequence).
fn common_names(mut name: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((0x31, set, _, rest)) = tlv(name) {
        let mut s = set;
        while let Some((0x30, atv, _, r)) = tlv(s) {
            if let Some((oid, value)) = expect(atv, 0x06) {
                if oid == OID_CN {
                    if let Some((tag, v, _, _)) = tlv(value) {
                        let text = if tag == 0x1e {
                            // BMPString: UTF-16BE.
                            let units: Vec<u16> = v
                                .chunks(2)
                                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                                .collect();
                            String::from_utf16_lossy(&units)
                        } else {
                            String::from_utf8_lossy(v).into_owned()
                        };
                        out.push(text);
                    }
                }
            }
            s = r;
        }
        name = rest;
    }
    out
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as Unix seconds.
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, h, m, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// libpq's name rule: compared without case; `*.example.com` matches one label in front of
/// `example.com`, never an IP address.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if let Some(suffix) = pattern.strip_prefix("*.") {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return false;
        }
        return match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        };
    }
    pattern == host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_names() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20240229120000Z"), Some(1_709_208_000));
        assert_eq!(time(0x17, b"701301000000Z"), None);
        assert!(name_matches("LocalHost", "localhost"));
        assert!(name_matches("*.example.com", "db.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.0.0.1", "127.0.0.1"));
        assert!(!name_matches("localhost", "localhost.evil"));
    }

    #[test]
    fn a_generated_certificate_reads_back() {
        let mut params = rcgen::CertificateParams::new(vec!["db.example.com".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "the db");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let c = parse(cert.der()).unwrap();
        assert_eq!(c.version, 2);
        assert_eq!(c.common_names, ["the db"]);
        assert_eq!(c.dns_names, ["db.example.com"]);
        assert_eq!(c.issuer, c.subject);
        assert!(c.not_before < c.not_after);
        // Truncated or garbage input is refused, not a panic.
        for n in 0..cert.der().len() {
            let _ = parse(&cert.der()[..n]);
        }
        assert!(parse(b"\x30\x84\xff\xff\xff\xff").is_none());
    }
}
