//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) as an explicit state machine:
//! `message()` is what to send, `update()` takes the server-first message, `finish()` checks
//! the server-final message. The client nonce can be injected so recorded exchanges replay.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Refuse absurd iteration counts: a hostile server could otherwise pin a core for hours.
const MAX_ITERATIONS: u32 = 100_000_000;

/// The channel-binding choice, which decides the GS2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// `n,,`: the client does not support channel binding (no TLS, or disabled).
    Unsupported,
    /// `y,,`: the client supports it but thinks the server does not (no -PLUS offered).
    Unrequested,
    /// `p=tls-server-end-point,,`: bind to this hash of the server's certificate.
    TlsServerEndPoint(Vec<u8>),
}

impl ChannelBinding {
    fn gs2_header(&self) -> &'static str {
        match self {
            ChannelBinding::Unsupported => "n,,",
            ChannelBinding::Unrequested => "y,,",
            ChannelBinding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    fn cbind_input(&self) -> Vec<u8> {
        let mut v = self.gs2_header().as_bytes().to_vec();
        if let ChannelBinding::TlsServerEndPoint(hash) = self {
            v.extend_from_slice(hash);
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("invalid SCRAM server message: {0}")]
    Malformed(&'static str),
    #[error("SCRAM server nonce does not extend the client nonce")]
    NonceMismatch,
    #[error("SCRAM server signature is wrong: the server does not know the password, or the connection was tampered with")]
    BadServerSignature,
    #[error("SCRAM authentication refused by the server: {0}")]
    ServerError(String),
    #[error("SCRAM messages arrived out of order")]
    OutOfOrder,
}

enum State {
    AwaitServerFirst {
        client_first_bare: String,
        nonce: String,
        password: Vec<u8>,
        channel_binding: ChannelBinding,
    },
    AwaitServerFinal {
        server_signature: [u8; 32],
    },
    Done,
}

pub struct ScramSha256 {
    message: Vec<u8>,
    state: State,
}

impl ScramSha256 {
    /// Starts an exchange with a fresh random nonce. `password` is used as given after
    /// SASLprep (see `auth::saslprep`).
    pub fn new(password: &[u8], channel_binding: ChannelBinding) -> ScramSha256 {
        let mut raw = [0u8; 18];
        getrandom::fill(&mut raw).expect("the operating system's random source failed");
        Self::with_nonce(password, channel_binding, &B64.encode(raw))
    }

    /// Starts an exchange with a given nonce: for tests and replays of recorded exchanges.
    pub fn with_nonce(
        password: &[u8],
        channel_binding: ChannelBinding,
        nonce: &str,
    ) -> ScramSha256 {
        // PostgreSQL takes the user name from the startup message and ignores this one.
        Self::with_user_and_nonce("", password, channel_binding, nonce)
    }

    fn with_user_and_nonce(
        user: &str,
        password: &[u8],
        channel_binding: ChannelBinding,
        nonce: &str,
    ) -> ScramSha256 {
        let client_first_bare = format!("n={user},r={nonce}");
        let message = format!("{}{}", channel_binding.gs2_header(), client_first_bare).into_bytes();
        ScramSha256 {
            message,
            state: State::AwaitServerFirst {
                client_first_bare,
                nonce: nonce.to_string(),
                password: super::saslprep(password),
                channel_binding,
            },
        }
    }

    /// The SASL mechanism name to announce with the first message.
    pub fn mechanism(&self) -> &'static str {
        match &self.state {
            State::AwaitServerFirst {
                channel_binding: ChannelBinding::TlsServerEndPoint(_),
                ..
            } => SCRAM_SHA_256_PLUS,
            _ => SCRAM_SHA_256,
        }
    }

    /// The message to send now: client-first, then client-final after `update`.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Takes the server-first message and computes the client-final message.
    pub fn update(&mut self, server_first: &[u8]) -> Result<(), ScramError> {
        let State::AwaitServerFirst {
            client_first_bare,
            nonce,
            password,
            channel_binding,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let parsed = parse_server_first(server_first)?;
        if !parsed.nonce.starts_with(&nonce) || parsed.nonce.len() == nonce.len() {
            return Err(ScramError::NonceMismatch);
        }

        let salted = hi(&password, &parsed.salt, parsed.iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();

        let without_proof = format!(
            "c={},r={}",
            B64.encode(channel_binding.cbind_input()),
            parsed.nonce
        );
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");

        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());

        self.message = format!("{without_proof},p={}", B64.encode(proof)).into_bytes();
        self.state = State::AwaitServerFinal { server_signature };
        Ok(())
    }

    /// Checks the server-final message: the server proves it knows the password.
    pub fn finish(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let State::AwaitServerFinal { server_signature } =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let server_final =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(err) = server_final.strip_prefix("e=") {
            return Err(ScramError::ServerError(err.to_string()));
        }
        let verifier = server_final
            .split(',')
            .next()
            .and_then(|a| a.strip_prefix("v="))
            .ok_or(ScramError::Malformed("server-final message lacks v="))?;
        let verifier = B64
            .decode(verifier)
            .map_err(|_| ScramError::Malformed("server signature is not base64"))?;
        // The comparison runs in constant time: rebuild the expected MAC and verify.
        if constant_time_eq(&verifier, &server_signature) {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

fn parse_server_first(msg: &str) -> Result<ServerFirst, ScramError> {
    let mut parts = msg.split(',');
    let mut next = |key: &'static str, what: &'static str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(key))
            .ok_or(ScramError::Malformed(what))
    };
    if msg.starts_with("m=") {
        return Err(ScramError::Malformed(
            "server requires an unsupported mandatory extension",
        ));
    }
    let nonce = next("r=", "server-first message lacks r=")?;
    let salt = next("s=", "server-first message lacks s=")?;
    let iterations = next("i=", "server-first message lacks i=")?;
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(ScramError::Malformed("server nonce has invalid characters"));
    }
    let salt = B64
        .decode(salt)
        .map_err(|_| ScramError::Malformed("salt is not base64"))?;
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(ScramError::Malformed("iteration count out of range"));
    }
    Ok(ServerFirst {
        nonce: nonce.to_string(),
        salt,
        iterations,
    })
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (`Hi` in RFC 5802). The keyed HMAC state is
/// computed once and cloned per iteration rather than re-keyed 4096 times.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let keyed = HmacSha256::new_from_slice(password).expect("HMAC accepts keys of any length");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&[0, 0, 0, 1]);
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut result = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (r, x) in result.iter_mut().zip(u) {
            *r ^= x;
        }
    }
    result
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimizer from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc7677_test_vector() {
        let mut scram = ScramSha256::with_user_and_nonce(
            "user",
            b"pencil",
            ChannelBinding::Unsupported,
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(scram.mechanism(), SCRAM_SHA_256);
        assert_eq!(scram.message(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        scram
            .update(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            scram.message(),
            &b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="[..]
        );
        scram
            .finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn wrong_server_signature_is_an_error() {
        let mut scram = ScramSha256::with_user_and_nonce(
            "user",
            b"pencil",
            ChannelBinding::Unsupported,
            "rOprNGfwEbeRWgbNEkqO",
        );
        scram
            .update(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            scram.finish(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn rejects_bad_server_first_messages() {
        let start = || ScramSha256::with_nonce(b"pw", ChannelBinding::Unsupported, "abc");
        for bad in [
            &b"r=xyz,s=QSXCR+Q6sek8bf92,i=4096"[..],
            b"r=abc,s=QSXCR+Q6sek8bf92,i=4096",
            b"r=abcd,s=%%%,i=4096",
            b"r=abcd,s=QSXCR+Q6sek8bf92,i=0",
            b"r=abcd,s=QSXCR+Q6sek8bf92",
            b"m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=1",
            b"\xff",
        ] {
            assert!(
                start().update(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(start().finish(b"v=x"), Err(ScramError::OutOfOrder));
    }

    #[test]
    fn channel_binding_headers() {
        let plus =
            ScramSha256::with_nonce(b"pw", ChannelBinding::TlsServerEndPoint(vec![1, 2]), "abc");
        assert_eq!(plus.mechanism(), SCRAM_SHA_256_PLUS);
        assert_eq!(plus.message(), b"p=tls-server-end-point,,n=,r=abc");
        let mut y = ScramSha256::with_nonce(b"pw", ChannelBinding::Unrequested, "abc");
        assert_eq!(y.message(), b"y,,n=,r=abc");
        y.update(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=2").unwrap();
        // c= carries base64("y,,").
        assert!(y.message().starts_with(b"c=eSws,r=abcdef,p="));
        let mut p = plus;
        p.update(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=2").unwrap();
        // c= carries base64("p=tls-server-end-point,," || hash).
        let expected = format!("c={},", B64.encode(b"p=tls-server-end-point,,\x01\x02"));
        assert!(p.message().starts_with(expected.as_bytes()));
    }

    #[test]
    fn server_error_is_reported() {
        let mut scram = ScramSha256::with_nonce(b"pw", ChannelBinding::Unsupported, "abc");
        scram.update(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=2").unwrap();
        assert_eq!(
            scram.finish(b"e=invalid-proof"),
            Err(ScramError::ServerError("invalid-proof".into()))
        );
    }
}
