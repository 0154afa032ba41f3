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
        let subkey: [u8; 32] = derive.finalize().into_bytes().into();
        Prf::from_key(&subkey)
    }

    /// A short fingerprint of the key, safe to store: it lets a resumed run check that it uses
    /// the same key without revealing it.
    pub fn fingerprint(&self) -> String {
        let out = self.prf("fingerprint").eval(&[b"fingerprint"]);
        out[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// HMAC-SHA256 keyed for one domain. The key's inner and outer blocks are compressed once;
/// each evaluation then costs exactly two SHA-256 block compressions for inputs up to 47
/// bytes (one more per further 64 bytes), with no buffering or state cloning beyond the
/// two 32-byte chaining values.
#[derive(Clone)]
pub struct Prf {
    inner: [u32; 8],
    outer: [u32; 8],
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

#[inline]
fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    use sha2::digest::generic_array::GenericArray;
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

impl Prf {
    fn from_key(key: &[u8; 32]) -> Prf {
        let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let (mut inner, mut outer) = (SHA256_IV, SHA256_IV);
        compress(&mut inner, &ipad);
        compress(&mut outer, &opad);
        Prf { inner, outer }
    }

    /// The PRF of the concatenated parts (each part is length-prefixed, so ("ab","c") and
    /// ("a","bc") differ).
    #[inline]
    pub fn eval(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut state = self.inner;
        let mut block = [0u8; 64];
        let mut at = 0usize;
        // Bytes hashed so far after the key block.
        let mut total = 0u64;
        let mut put = |bytes: &[u8], state: &mut [u32; 8], block: &mut [u8; 64], at: &mut usize| {
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = (64 - *at).min(rest.len());
                block[*at..*at + n].copy_from_slice(&rest[..n]);
                *at += n;
                rest = &rest[n..];
                if *at == 64 {
                    compress(state, block);
                    *at = 0;
                }
            }
            total += bytes.len() as u64;
        };
        for p in parts {
            put(
                &(p.len() as u32).to_be_bytes(),
                &mut state,
                &mut block,
                &mut at,
            );
            put(p, &mut state, &mut block, &mut at);
        }
        // SHA-256 padding; the length counts the key block too.
        let bits = (64 + total) * 8;
        block[at] = 0x80;
        block[at + 1..].fill(0);
        if at + 1 > 56 {
            compress(&mut state, &block);
            block = [0u8; 64];
        }
        block[56..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut state, &block);
        // Outer hash over the 32-byte inner digest: one block.
        let mut outer_block = [0u8; 64];
        for (i, w) in state.iter().enumerate() {
            outer_block[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        outer_block[32] = 0x80;
        outer_block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut out_state = self.outer;
        compress(&mut out_state, &outer_block);
        let mut out = [0u8; 32];
        for (i, w) in out_state.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        out
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

    /// The direct computation is HMAC-SHA256 exactly: compared with the hmac crate on
    /// inputs around every block boundary.
    #[test]
    fn eval_is_hmac_sha256() {
        let subkey = [7u8; 32];
        let prf = Prf::from_key(&subkey);
        for len in 0..200usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut mac = HmacSha256::new_from_slice(&subkey).unwrap();
            mac.update(&(len as u32).to_be_bytes());
            mac.update(&data);
            let expected: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(prf.eval(&[&data]), expected, "length {len}");
        }
        let mut mac = HmacSha256::new_from_slice(&subkey).unwrap();
        for p in [&b"ab"[..], b"", b"cde"] {
            mac.update(&(p.len() as u32).to_be_bytes());
            mac.update(p);
        }
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(prf.eval(&[b"ab", b"", b"cde"]), expected);
    }

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
