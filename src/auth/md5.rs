//! MD5 password hashing as PostgreSQL's `md5` method expects it.

use md5::{Digest, Md5};

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// `"md5" || hex(md5(hex(md5(password || user)) || salt))`.
pub fn hash_password(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    let mut inner = Md5::new();
    inner.update(password);
    inner.update(user);
    let inner = hex(&inner.finalize());
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(salt);
    format!("md5{}", hex(&outer.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_postgres() {
        // Values computed independently (Python hashlib) for user "md5_user", password
        // "md5pass" and salt 01 02 03 04; the stored verifier is md5(password || user).
        assert_eq!(
            hex(&Md5::digest(b"md5passmd5_user")),
            "80dcaaba30666a7775bc7ee0c688f8db"
        );
        assert_eq!(
            hash_password(b"md5_user", b"md5pass", [1, 2, 3, 4]),
            "md553cd9558ecf6e071b157c089adc0ef7c"
        );
    }
}
