//! Password authentication: cleartext, MD5 and SCRAM-SHA-256(-PLUS).
//! Pure computation over bytes; the connection layer decides which method to run.

pub mod md5;
pub mod scram;

use std::fmt;

/// How the server authenticated this connection, as `privaci ping` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The server asked for nothing (`trust`, `peer`, or a client certificate with `cert`).
    None,
    Cleartext,
    Md5,
    ScramSha256,
    ScramSha256Plus,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::None => "none (trust, peer or certificate)",
            AuthMethod::Cleartext => "cleartext password",
            AuthMethod::Md5 => "MD5",
            AuthMethod::ScramSha256 => "SCRAM-SHA-256",
            AuthMethod::ScramSha256Plus => {
                "SCRAM-SHA-256-PLUS (channel binding tls-server-end-point)"
            }
        })
    }
}

/// Prepares a password as PostgreSQL's `pg_saslprep` does: ASCII passes through unchanged;
/// other UTF-8 goes through SASLprep (RFC 4013); where preparation fails (prohibited or
/// unassigned characters, or bytes that are not UTF-8) the raw password is used, which is what
/// the server does when it stores the verifier.
pub fn saslprep(password: &[u8]) -> Vec<u8> {
    if password.is_ascii() {
        return password.to_vec();
    }
    match std::str::from_utf8(password) {
        Ok(s) => match stringprep::saslprep(s) {
            Ok(prepared) => prepared.into_owned().into_bytes(),
            Err(_) => password.to_vec(),
        },
        Err(_) => password.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslprep_follows_postgres() {
        assert_eq!(saslprep(b"pencil"), b"pencil");
        // ASCII control characters pass through too: PostgreSQL skips preparation for ASCII.
        assert_eq!(saslprep(b"a\x07b"), b"a\x07b");
        // Non-ASCII space maps to a space; soft hyphen maps to nothing; NFKC applies.
        assert_eq!(saslprep("a\u{00A0}b".as_bytes()), b"a b");
        assert_eq!(saslprep("I\u{00AD}X".as_bytes()), b"IX");
        assert_eq!(saslprep("\u{2168}".as_bytes()), b"IX");
        // A prohibited character makes preparation fail: the raw bytes are used.
        assert_eq!(
            saslprep("a\u{0007}\u{00e9}".as_bytes()),
            "a\u{0007}\u{00e9}".as_bytes()
        );
        assert_eq!(saslprep(b"\xff\xfe"), b"\xff\xfe");
    }
}
