//! Frontend (client to server) messages, each appended to a `BytesMut`.
//! The length field is written as a placeholder and back-patched, so no body is built twice.

use bytes::{BufMut, BytesMut};

use super::{ProtocolError, PROTOCOL_VERSION};

const SSL_REQUEST_CODE: i32 = 80877103;
const CANCEL_REQUEST_CODE: i32 = 80877102;

/// Writes a tagged message: the tag, a length placeholder, the body, then the real length.
#[inline]
fn tagged(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let len_at = buf.len();
    buf.put_i32(0);
    body(buf);
    patch_len(buf, len_at);
}

#[inline]
fn patch_len(buf: &mut BytesMut, len_at: usize) {
    let len = (buf.len() - len_at) as i32;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

/// A C string: the bytes must not contain NUL, which would end the string early on the server.
fn put_cstr(buf: &mut BytesMut, s: &[u8], what: &str) -> Result<(), ProtocolError> {
    if s.contains(&0) {
        return Err(ProtocolError::new(format!(
            "{what} contains a NUL byte, which PostgreSQL cannot accept"
        )));
    }
    buf.put_slice(s);
    buf.put_u8(0);
    Ok(())
}

/// StartupMessage: protocol version then `name\0value\0` pairs and a final `\0`.
pub fn startup(params: &[(&str, &str)], buf: &mut BytesMut) -> Result<(), ProtocolError> {
    let len_at = buf.len();
    buf.put_i32(0);
    buf.put_i32(PROTOCOL_VERSION);
    for (name, value) in params {
        put_cstr(buf, name.as_bytes(), "a startup parameter name")?;
        put_cstr(buf, value.as_bytes(), &format!("startup parameter {name}"))?;
    }
    buf.put_u8(0);
    patch_len(buf, len_at);
    Ok(())
}

/// SSLRequest: asks the server to switch to TLS before the startup message.
pub fn ssl_request(buf: &mut BytesMut) {
    buf.put_i32(8);
    buf.put_i32(SSL_REQUEST_CODE);
}

/// CancelRequest, sent on a fresh connection with the target backend's key data.
pub fn cancel_request(process_id: i32, secret_key: i32, buf: &mut BytesMut) {
    buf.put_i32(16);
    buf.put_i32(CANCEL_REQUEST_CODE);
    buf.put_i32(process_id);
    buf.put_i32(secret_key);
}

/// PasswordMessage carrying a cleartext or MD5-hashed password.
pub fn password(password: &[u8], buf: &mut BytesMut) -> Result<(), ProtocolError> {
    let mut res = Ok(());
    tagged(buf, b'p', |b| res = put_cstr(b, password, "the password"));
    res
}

/// SASLInitialResponse: the chosen mechanism and the client-first message.
pub fn sasl_initial_response(
    mechanism: &str,
    data: &[u8],
    buf: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let mut res = Ok(());
    tagged(buf, b'p', |b| {
        res = put_cstr(b, mechanism.as_bytes(), "the SASL mechanism");
        b.put_i32(data.len() as i32);
        b.put_slice(data);
    });
    res
}

/// SASLResponse: a later SASL message (the client-final message for SCRAM).
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) {
    tagged(buf, b'p', |b| b.put_slice(data));
}

/// Query: a simple-protocol query string, possibly holding several statements.
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<(), ProtocolError> {
    let mut res = Ok(());
    tagged(buf, b'Q', |b| {
        res = put_cstr(b, sql.as_bytes(), "the query")
    });
    res
}

/// Terminate: a polite goodbye before closing the socket.
pub fn terminate(buf: &mut BytesMut) {
    tagged(buf, b'X', |_| {});
}

/// CopyData around a payload that is copied in. The COPY IN sink writes its headers in place instead.
pub fn copy_data(data: &[u8], buf: &mut BytesMut) {
    tagged(buf, b'd', |b| b.put_slice(data));
}

/// CopyDone: the end of a COPY FROM STDIN stream.
pub fn copy_done(buf: &mut BytesMut) {
    tagged(buf, b'c', |_| {});
}

/// CopyFail: abort a COPY FROM STDIN with a reason the server reports back in its error.
pub fn copy_fail(reason: &str, buf: &mut BytesMut) {
    let reason = reason.replace('\0', " ");
    tagged(buf, b'f', |b| {
        b.put_slice(reason.as_bytes());
        b.put_u8(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_message_layout() {
        let mut buf = BytesMut::new();
        startup(&[("user", "bob"), ("database", "db")], &mut buf).unwrap();
        let expected: &[u8] = b"\x00\x00\x00\x1e\x00\x03\x00\x00user\0bob\0database\0db\0\0";
        assert_eq!(&buf[..], expected);
    }

    #[test]
    fn ssl_and_cancel_requests() {
        let mut buf = BytesMut::new();
        ssl_request(&mut buf);
        assert_eq!(&buf[..], b"\x00\x00\x00\x08\x04\xd2\x16\x2f");
        buf.clear();
        cancel_request(7, -2, &mut buf);
        assert_eq!(
            &buf[..],
            b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x07\xff\xff\xff\xfe"
        );
    }

    #[test]
    fn query_is_tagged_and_nul_terminated() {
        let mut buf = BytesMut::new();
        query("SELECT 1", &mut buf).unwrap();
        assert_eq!(&buf[..], b"Q\x00\x00\x00\x0dSELECT 1\0");
        assert!(query("SELECT '\0'", &mut BytesMut::new()).is_err());
    }

    #[test]
    fn sasl_initial_response_carries_length() {
        let mut buf = BytesMut::new();
        sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", &mut buf).unwrap();
        let mut expected = b"p\x00\x00\x00\x21SCRAM-SHA-256\0\x00\x00\x00\x0b".to_vec();
        expected.extend_from_slice(b"n,,n=,r=abc");
        assert_eq!(&buf[..], &expected[..]);
    }

    #[test]
    fn copy_messages() {
        let mut buf = BytesMut::new();
        copy_data(b"ab", &mut buf);
        copy_done(&mut buf);
        copy_fail("no", &mut buf);
        assert_eq!(
            &buf[..],
            b"d\x00\x00\x00\x06abc\x00\x00\x00\x04f\x00\x00\x00\x07no\0"
        );
    }
}
