//! The masking secret and the keyed functions derived from it. Each strategy gets its own
//! HMAC-SHA256 state, keyed once from the secret and a domain name, and cloned per value: the
//! same input gives the same output in every table and every run with the same secret, and
//! without the secret the output says nothing about the input.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The environment variable that holds the masking secret.
pub const KEY_ENV: &str = "PRIVACI_MASK_KEY";

/// The masking secret. Debug output never shows it.
#[derive(Clone)]
pub struct MaskKey(Vec<u8>);

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskKey(***)")
    }
}

impl MaskKey {
    /// A key from bytes; at least 16 bytes, so that it cannot be guessed by enumeration.
    pub fn new(secret: &[u8]) -> Result<MaskKey, String> {
        if secret.len() < 16 {
            return Err(format!(
                "the masking key must be at least 16 bytes long (it is {})",
                secret.len()
            ));
        }
        Ok(MaskKey(secret.to_vec()))
    }

    /// The key from `PRIVACI_MASK_KEY`, if set.
    pub fn from_env() -> Result<Option<MaskKey>, String> {
        match std::env::var_os(KEY_ENV) {
            None => Ok(None),
            Some(v) => {
                use std::os::unix::ffi::OsStrExt;
                MaskKey::new(v.as_bytes())
                    .map(Some)
                    .map_err(|e| format!("{KEY_ENV}: {e}"))
            }
        }
    }

    /// A keyed function for one domain (a strategy and the options that change its output).
    pub fn prf(&self, domain: &str) -> Prf {
        let mut derive =
            HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        derive.update(b"privaci/mask/v1/");
        derive.update(domain.as_bytes());
        let subkey = derive.finalize().into_bytes();
        Prf {
            keyed: HmacSha256::new_from_slice(&subkey).expect("HMAC takes keys of any length"),
        }
    }

    /// A short fingerprint of the key, safe to store: it lets a resumed run check that it uses
    /// the same key without revealing it.
    pub fn fingerprint(&self) -> String {
        let out = self.prf("fingerprint").eval(&[b"fingerprint"]);
        out[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// HMAC-SHA256 keyed for one domain; the keyed state is computed once and cloned per call.
#[derive(Clone)]
pub struct Prf {
    keyed: HmacSha256,
}

impl Prf {
    /// The PRF of the concatenated parts (each part is length-prefixed, so ("ab","c") and
    /// ("a","bc") differ).
    #[inline]
    pub fn eval(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        for p in parts {
            mac.update(&(p.len() as u32).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// A uniform value in `0..n` from the PRF of `input` (n > 0).
    #[inline]
    pub fn below(&self, input: &[u8], n: u64) -> u64 {
        let h = self.eval(&[input]);
        // 128 bits reduced modulo n: the bias is below 2^-64 for any n < 2^64.
        let x = u128::from_be_bytes(h[..16].try_into().unwrap_or_default());
        (x % n as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_key_and_domain() {
        let k1 = MaskKey::new(b"0123456789abcdef").unwrap();
        let k2 = MaskKey::new(b"0123456789abcdeF").unwrap();
        assert_eq!(k1.prf("email").eval(&[b"x"]), k1.prf("email").eval(&[b"x"]));
        assert_ne!(k1.prf("email").eval(&[b"x"]), k2.prf("email").eval(&[b"x"]));
        assert_ne!(k1.prf("email").eval(&[b"x"]), k1.prf("hash").eval(&[b"x"]));
        assert_ne!(
            k1.prf("d").eval(&[b"ab", b"c"]),
            k1.prf("d").eval(&[b"a", b"bc"])
        );
        assert!(MaskKey::new(b"short").is_err());
        assert!(!format!("{k1:?}").contains("0123"));
        assert_eq!(k1.fingerprint().len(), 16);
    }
}
