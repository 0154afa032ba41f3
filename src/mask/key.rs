//! The masking secret and the keyed functions derived from it. Each strategy gets its own
//! keyed PRF, derived once from the secret and a domain name with HMAC-SHA256: the same input
//! gives the same output in every table and every run with the same secret, and without the
//! secret the output says nothing about the input. Per value the PRF is AES-256-CMAC (NIST SP
//! 800-38B, the block cipher FF1 builds on), expanded to 32 bytes by a second AES key: with
//! AES instructions it costs a few dozen nanoseconds where HMAC-SHA256 costs two SHA-256
//! compressions (fast only on CPUs with SHA extensions).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes256;
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
        let derive = |role: &[u8]| -> [u8; 32] {
            let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
                .expect("HMAC takes keys of any length");
            mac.update(b"privaci/mask/v2/");
            mac.update(domain.as_bytes());
            mac.update(role);
            mac.finalize().into_bytes().into()
        };
        Prf::from_keys(&derive(b"/cmac"), &derive(b"/expand"))
    }

    /// A short fingerprint of the key, safe to store: it lets a resumed run check that it uses
    /// the same key without revealing it.
    pub fn fingerprint(&self) -> String {
        let out = self.prf("fingerprint").eval(&[b"fingerprint"]);
        out[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Pseudo-random blocks from `Prf::stream`.
pub struct Stream<'a> {
    expand: &'a Aes256,
    tag: u128,
    counter: u128,
}

impl Stream<'_> {
    #[inline]
    pub fn next_block(&mut self) -> [u8; 16] {
        let b = encrypt(self.expand, self.tag ^ self.counter);
        self.counter += 1;
        b.to_be_bytes()
    }
}

/// AES-256-CMAC keyed for one domain, its 16-byte tag `T` expanded to 32 bytes as
/// `E'(T) || E'(T xor 1)` under a second key. The key schedules and CMAC subkeys are computed
/// once; an evaluation of up to 11 input bytes (with its 4-byte length prefix) costs three
/// AES block encryptions, one more per further 16 bytes, and allocates nothing.
#[derive(Clone)]
pub struct Prf {
    mac: Aes256,
    expand: Aes256,
    /// CMAC subkeys for a complete and a padded last block.
    k1: u128,
    k2: u128,
}

#[inline]
fn encrypt(cipher: &Aes256, block: u128) -> u128 {
    let mut b = block.to_be_bytes();
    cipher.encrypt_block(GenericArray::from_mut_slice(&mut b));
    u128::from_be_bytes(b)
}

/// Doubling in GF(2^128), as CMAC derives its subkeys.
fn dbl(v: u128) -> u128 {
    (v << 1) ^ if v >> 127 == 1 { 0x87 } else { 0 }
}

/// CMAC over bytes fed in pieces: a full block is held back until more input shows it is
/// not the last one.
struct Cmac<'a> {
    prf: &'a Prf,
    x: u128,
    buf: [u8; 16],
    at: usize,
}

impl Cmac<'_> {
    #[inline]
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.at == 16 {
                self.x = encrypt(&self.prf.mac, self.x ^ u128::from_be_bytes(self.buf));
                self.at = 0;
            }
            let n = (16 - self.at).min(bytes.len());
            self.buf[self.at..self.at + n].copy_from_slice(&bytes[..n]);
            self.at += n;
            bytes = &bytes[n..];
        }
    }

    #[inline]
    fn finish(mut self) -> u128 {
        let last = if self.at == 16 {
            u128::from_be_bytes(self.buf) ^ self.prf.k1
        } else {
            self.buf[self.at] = 0x80;
            self.buf[self.at + 1..].fill(0);
            u128::from_be_bytes(self.buf) ^ self.prf.k2
        };
        encrypt(&self.prf.mac, self.x ^ last)
    }
}

impl Prf {
    fn from_keys(mac_key: &[u8; 32], expand_key: &[u8; 32]) -> Prf {
        let mac = Aes256::new(GenericArray::from_slice(mac_key));
        let expand = Aes256::new(GenericArray::from_slice(expand_key));
        let k1 = dbl(encrypt(&mac, 0));
        Prf {
            mac,
            expand,
            k1,
            k2: dbl(k1),
        }
    }

    fn cmac(&self) -> Cmac<'_> {
        Cmac {
            prf: self,
            x: 0,
            buf: [0; 16],
            at: 0,
        }
    }

    /// 16 bytes of PRF output for the concatenated parts (length-prefixed, as `eval`): the
    /// CMAC tag itself, one AES encryption per 16 input bytes. For callers that need no more
    /// than 128 bits; a different function from `eval`, so one purpose uses one of them.
    #[inline]
    pub fn eval_block(&self, parts: &[&[u8]]) -> [u8; 16] {
        let mut mac = self.cmac();
        for p in parts {
            mac.put(&(p.len() as u32).to_be_bytes());
            mac.put(p);
        }
        mac.finish().to_be_bytes()
    }

    /// A keystream for the concatenated parts (length-prefixed, as `eval_block`): AES in
    /// counter mode under the expansion key, started at their CMAC tag `T`, so block `i` is
    /// `E'(T xor i)`. Each 16 further bytes cost one AES encryption.
    #[inline]
    pub fn stream(&self, parts: &[&[u8]]) -> Stream<'_> {
        Stream {
            expand: &self.expand,
            tag: u128::from_be_bytes(self.eval_block(parts)),
            counter: 0,
        }
    }

    /// 32 bytes of PRF output for the concatenated parts (each part is length-prefixed, so
    /// ("ab","c") and ("a","bc") differ): the first two blocks of their `stream`.
    #[inline]
    pub fn eval(&self, parts: &[&[u8]]) -> [u8; 32] {
        let t = u128::from_be_bytes(self.eval_block(parts));
        // Both halves in one call, so the two encryptions overlap in the pipeline.
        let mut blocks = [
            GenericArray::from(t.to_be_bytes()),
            GenericArray::from((t ^ 1).to_be_bytes()),
        ];
        self.expand.encrypt_blocks(&mut blocks);
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&blocks[0]);
        out[16..].copy_from_slice(&blocks[1]);
        out
    }

    /// A uniform value in `0..n` from the PRF of `input` (n > 0).
    #[inline]
    pub fn below(&self, input: &[u8], n: u64) -> u64 {
        let h = self.eval_block(&[input]);
        // 128 bits reduced modulo n: the bias is below 2^-64 for any n < 2^64.
        let x = u128::from_be_bytes(h[..16].try_into().unwrap_or_default());
        (x % n as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The CMAC is AES-256-CMAC exactly: NIST SP 800-38B's AES-256 examples (messages of 0,
    /// 16, 40 and 64 bytes, so an empty, a full, a padded and several full last blocks), fed
    /// whole and byte by byte.
    #[test]
    fn cmac_matches_the_nist_examples() {
        let key: [u8; 32] = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .try_into()
            .unwrap();
        let prf = Prf::from_keys(&key, &[0; 32]);
        let msg = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ));
        for (len, tag) in [
            (0, "028962f61b7bf89efc6b551f4667d983"),
            (16, "28a7023f452e8f82bd4bf28d8c37c35c"),
            (40, "aaf3d8f1de5640c232f5b169b9c911e6"),
            (64, "e1992190549f6ed5696a2c056c315410"),
        ] {
            let want = u128::from_be_bytes(hex(tag).try_into().unwrap());
            let mut whole = prf.cmac();
            whole.put(&msg[..len]);
            assert_eq!(whole.finish(), want, "{len} bytes");
            let mut bytewise = prf.cmac();
            for b in &msg[..len] {
                bytewise.put(std::slice::from_ref(b));
            }
            assert_eq!(bytewise.finish(), want, "{len} bytes, fed one at a time");
        }
    }

    /// `eval` is the CMAC of the length-prefixed parts, expanded under the second key.
    #[test]
    fn eval_is_the_expanded_cmac_of_the_encoded_parts() {
        let prf = Prf::from_keys(&[7; 32], &[9; 32]);
        let mut mac = prf.cmac();
        for p in [&b"ab"[..], b"", b"cde"] {
            mac.put(&(p.len() as u32).to_be_bytes());
            mac.put(p);
        }
        let t = mac.finish();
        let out = prf.eval(&[b"ab", b"", b"cde"]);
        assert_eq!(out[..16], encrypt(&prf.expand, t).to_be_bytes());
        assert_eq!(out[16..], encrypt(&prf.expand, t ^ 1).to_be_bytes());
        assert_ne!(out[..16], out[16..]);
        let mut stream = prf.stream(&[b"ab", b"", b"cde"]);
        assert_eq!(stream.next_block(), out[..16]);
        assert_eq!(stream.next_block(), out[16..]);
        assert_eq!(
            stream.next_block(),
            encrypt(&prf.expand, t ^ 2).to_be_bytes()
        );
        assert_eq!(prf.eval_block(&[b"ab", b"", b"cde"]), t.to_be_bytes());
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
