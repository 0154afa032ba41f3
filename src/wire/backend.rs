//! Backend (server to client) messages, parsed from a read buffer.
//! A message's length is checked against a cap before any space is reserved for it, and each
//! body is checked to be consumed exactly: a malformed message is an error, never a panic.

use bytes::{Buf, Bytes, BytesMut};

use super::{DbError, ProtocolError};

/// Cap on a message before authentication completes. libpq uses 30000 bytes for the same
/// purpose: a peer that is not yet known to be PostgreSQL must not make us allocate much.
pub const MAX_STARTUP_MESSAGE_LEN: usize = 64 * 1024;
/// Cap afterwards: one field of a row can be up to 1 GiB, plus the row's framing.
pub const MAX_MESSAGE_LEN: usize = (1 << 30) + 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Ok,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue {
        data: Bytes,
    },
    SaslFinal {
        data: Bytes,
    },
    /// Kerberos V5 (2), SCM (6), GSS (7), GSS continue (8), SSPI (9): not supported.
    Unsupported {
        code: i32,
    },
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    pub table_oid: u32,
    pub column_id: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    pub format: i16,
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse: the overall and per-column formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 text, 1 binary.
    pub format: u8,
    pub column_formats: Vec<i16>,
}

/// A DataRow body, kept as the bytes it arrived in; fields are read through `fields()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    count: u16,
    body: Bytes,
}

impl DataRow {
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The fields in order: `None` is SQL NULL. The body was validated when parsed.
    pub fn fields(&self) -> DataRowFields<'_> {
        DataRowFields {
            rest: &self.body[2..],
            left: self.count,
        }
    }
}

pub struct DataRowFields<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for DataRowFields<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let len = i32::from_be_bytes(self.rest[..4].try_into().ok()?);
        self.rest = &self.rest[4..];
        if len < 0 {
            return Some(None);
        }
        let (value, rest) = self.rest.split_at(len as usize);
        self.rest = rest;
        Some(Some(value))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Authentication(Authentication),
    BackendKeyData {
        process_id: i32,
        secret_key: i32,
    },
    ParameterStatus {
        name: String,
        value: String,
    },
    /// `I` idle, `T` in a transaction, `E` in a failed transaction.
    ReadyForQuery {
        status: u8,
    },
    RowDescription(Vec<FieldDescription>),
    DataRow(DataRow),
    CommandComplete {
        tag: String,
    },
    EmptyQueryResponse,
    ErrorResponse(Box<DbError>),
    NoticeResponse(Box<DbError>),
    NotificationResponse {
        process_id: i32,
        channel: String,
        payload: String,
    },
    NegotiateProtocolVersion {
        newest_minor: i32,
        unrecognized: Vec<String>,
    },
    CopyInResponse(CopyResponse),
    CopyOutResponse(CopyResponse),
    CopyBothResponse(CopyResponse),
    CopyData(Bytes),
    CopyDone,
}

impl Message {
    /// Parses one message from the front of `buf`, or returns `None` when more bytes are
    /// needed, having reserved room for the rest of the message (never beyond `max_len`).
    pub fn parse(buf: &mut BytesMut, max_len: usize) -> Result<Option<Message>, ProtocolError> {
        let Some(total) = frame_len(buf, max_len)? else {
            return Ok(None);
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let tag = buf[0];
        let mut frame = buf.split_to(total).freeze();
        frame.advance(5);
        Message::parse_body(tag, frame).map(Some)
    }

    fn parse_body(tag: u8, body: Bytes) -> Result<Message, ProtocolError> {
        let mut r = Reader { buf: body, tag };
        let msg = match tag {
            b'R' => Message::Authentication(r.authentication()?),
            b'K' => Message::BackendKeyData {
                process_id: r.i32()?,
                secret_key: r.i32()?,
            },
            b'S' => Message::ParameterStatus {
                name: r.cstr()?,
                value: r.cstr()?,
            },
            b'Z' => Message::ReadyForQuery { status: r.u8()? },
            b'T' => Message::RowDescription(r.row_description()?),
            b'D' => Message::DataRow(r.data_row()?),
            b'C' => Message::CommandComplete { tag: r.cstr()? },
            b'I' => Message::EmptyQueryResponse,
            b'E' => Message::ErrorResponse(Box::new(DbError::parse(&r.take_rest())?)),
            b'N' => Message::NoticeResponse(Box::new(DbError::parse(&r.take_rest())?)),
            b'A' => Message::NotificationResponse {
                process_id: r.i32()?,
                channel: r.cstr()?,
                payload: r.cstr()?,
            },
            b'v' => {
                let newest_minor = r.i32()?;
                let n = r.count()?;
                let mut unrecognized = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    unrecognized.push(r.cstr()?);
                }
                Message::NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                }
            }
            b'G' => Message::CopyInResponse(r.copy_response()?),
            b'H' => Message::CopyOutResponse(r.copy_response()?),
            b'W' => Message::CopyBothResponse(r.copy_response()?),
            b'd' => Message::CopyData(r.take_rest()),
            b'c' => Message::CopyDone,
            other => {
                return Err(ProtocolError::new(format!(
                    "unknown message type {:?} (0x{other:02x}) from the server",
                    other as char
                )))
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

/// The full length (tag included) of the message at the front of `buf`, once its header is
/// in; checks the declared length against `max_len` first.
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, ProtocolError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let declared = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if declared < 4 {
        return Err(ProtocolError::new(format!(
            "message {:?} declares an impossible length {declared}",
            buf[0] as char
        )));
    }
    if declared - 4 > max_len {
        return Err(ProtocolError::new(format!(
            "message {:?} declares {declared} bytes, over the limit of {max_len}: not a PostgreSQL server, or a corrupt stream",
            buf[0] as char
        )));
    }
    Ok(Some(declared + 1))
}

/// A cursor over one message body that turns every overrun into a `ProtocolError`.
struct Reader {
    buf: Bytes,
    tag: u8,
}

impl Reader {
    fn short(&self) -> ProtocolError {
        ProtocolError::new(format!("message {:?} is truncated", self.tag as char))
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        if self.buf.is_empty() {
            return Err(self.short());
        }
        Ok(self.buf.get_u8())
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        if self.buf.len() < 2 {
            return Err(self.short());
        }
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        if self.buf.len() < 4 {
            return Err(self.short());
        }
        Ok(self.buf.get_i32())
    }

    fn count(&mut self) -> Result<usize, ProtocolError> {
        let n = self.i32()?;
        usize::try_from(n).map_err(|_| {
            ProtocolError::new(format!(
                "message {:?} has a negative count",
                self.tag as char
            ))
        })
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, ProtocolError> {
        if self.buf.len() < n {
            return Err(self.short());
        }
        Ok(self.buf.split_to(n))
    }

    fn cstr(&mut self) -> Result<String, ProtocolError> {
        let end = self.buf.iter().position(|&b| b == 0).ok_or_else(|| {
            ProtocolError::new(format!(
                "message {:?} has an unterminated string",
                self.tag as char
            ))
        })?;
        let s = self.buf.split_to(end);
        self.buf.advance(1);
        String::from_utf8(s.to_vec()).map_err(|_| {
            ProtocolError::new(format!(
                "message {:?} has a string that is not UTF-8",
                self.tag as char
            ))
        })
    }

    fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::new(format!(
                "message {:?} has {} unexpected trailing bytes",
                self.tag as char,
                self.buf.len()
            )))
        }
    }

    fn authentication(&mut self) -> Result<Authentication, ProtocolError> {
        Ok(match self.i32()? {
            0 => Authentication::Ok,
            3 => Authentication::CleartextPassword,
            5 => {
                let salt = self.bytes(4)?;
                Authentication::Md5Password {
                    salt: [salt[0], salt[1], salt[2], salt[3]],
                }
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = self.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m);
                }
                Authentication::Sasl { mechanisms }
            }
            11 => Authentication::SaslContinue {
                data: self.take_rest(),
            },
            12 => Authentication::SaslFinal {
                data: self.take_rest(),
            },
            code @ (2 | 6 | 7 | 9) => Authentication::Unsupported { code },
            8 => {
                self.take_rest();
                Authentication::Unsupported { code: 8 }
            }
            code => {
                return Err(ProtocolError::new(format!(
                    "unknown authentication request {code}"
                )))
            }
        })
    }

    fn row_description(&mut self) -> Result<Vec<FieldDescription>, ProtocolError> {
        let n = self.i16()?;
        let n = usize::try_from(n)
            .map_err(|_| ProtocolError::new("row description has a negative column count"))?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(FieldDescription {
                name: self.cstr()?,
                table_oid: self.i32()? as u32,
                column_id: self.i16()?,
                type_oid: self.i32()? as u32,
                type_size: self.i16()?,
                type_modifier: self.i32()?,
                format: self.i16()?,
            });
        }
        Ok(fields)
    }

    fn data_row(&mut self) -> Result<DataRow, ProtocolError> {
        let body = self.take_rest();
        // Validate once here so that `DataRow::fields` can walk without checks.
        let mut check = Reader {
            buf: body.clone(),
            tag: b'D',
        };
        let count = check.i16()?;
        let count = u16::try_from(count)
            .map_err(|_| ProtocolError::new("data row has a negative field count"))?;
        for _ in 0..count {
            let len = check.i32()?;
            if len >= 0 {
                check.bytes(len as usize)?;
            } else if len != -1 {
                return Err(ProtocolError::new(format!(
                    "data row field has an invalid length {len}"
                )));
            }
        }
        check.finish()?;
        Ok(DataRow { count, body })
    }

    fn copy_response(&mut self) -> Result<CopyResponse, ProtocolError> {
        let format = self.u8()?;
        if format > 1 {
            return Err(ProtocolError::new(format!(
                "copy response has an unknown format {format}"
            )));
        }
        let n = self.i16()?;
        let n = usize::try_from(n)
            .map_err(|_| ProtocolError::new("copy response has a negative column count"))?;
        let mut column_formats = Vec::with_capacity(n);
        for _ in 0..n {
            column_formats.push(self.i16()?);
        }
        Ok(CopyResponse {
            format,
            column_formats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.extend_from_slice(&[tag]);
        b.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    fn parse_one(tag: u8, body: &[u8]) -> Result<Option<Message>, ProtocolError> {
        Message::parse(&mut frame(tag, body), MAX_MESSAGE_LEN)
    }

    #[test]
    fn parses_common_messages() {
        assert_eq!(
            parse_one(b'Z', b"I").unwrap(),
            Some(Message::ReadyForQuery { status: b'I' })
        );
        assert_eq!(
            parse_one(b'S', b"server_version\x0015.4\0").unwrap(),
            Some(Message::ParameterStatus {
                name: "server_version".into(),
                value: "15.4".into()
            })
        );
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x05abcd").unwrap(),
            Some(Message::Authentication(Authentication::Md5Password {
                salt: *b"abcd"
            }))
        );
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0").unwrap(),
            Some(Message::Authentication(Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            }))
        );
        assert_eq!(
            parse_one(b'v', b"\0\0\0\0\0\0\0\x01_pq_.x\0").unwrap(),
            Some(Message::NegotiateProtocolVersion {
                newest_minor: 0,
                unrecognized: vec!["_pq_.x".into()]
            })
        );
    }

    #[test]
    fn data_row_fields_and_nulls() {
        let Some(Message::DataRow(row)) =
            parse_one(b'D', b"\0\x03\0\0\0\x02hi\xff\xff\xff\xff\0\0\0\0").unwrap()
        else {
            panic!("not a data row")
        };
        let fields: Vec<_> = row.fields().collect();
        assert_eq!(fields, vec![Some(&b"hi"[..]), None, Some(&b""[..])]);
    }

    #[test]
    fn waits_for_split_messages() {
        let full = frame(b'C', b"SELECT 1\0");
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(
                Message::parse(&mut buf, MAX_MESSAGE_LEN).unwrap(),
                None,
                "cut at {cut}"
            );
            buf.extend_from_slice(&full[cut..]);
            assert_eq!(
                Message::parse(&mut buf, MAX_MESSAGE_LEN).unwrap(),
                Some(Message::CommandComplete {
                    tag: "SELECT 1".into()
                })
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn rejects_malformed_messages() {
        // Oversized: refused from the header alone, before any allocation.
        let mut huge = BytesMut::from(&b"D\x7f\xff\xff\xff"[..]);
        let err = Message::parse(&mut huge, MAX_STARTUP_MESSAGE_LEN).unwrap_err();
        assert!(err.0.contains("over the limit"), "{err}");
        assert!(huge.capacity() < 1024);
        // Length smaller than the length field itself.
        assert!(Message::parse(&mut BytesMut::from(&b"Z\0\0\0\x02"[..]), MAX_MESSAGE_LEN).is_err());
        // Unknown tag.
        assert!(parse_one(b'?', b"")
            .unwrap_err()
            .0
            .contains("unknown message type"));
        // Truncated bodies and trailing bytes.
        assert!(parse_one(b'K', b"\0\0\0\x01\0\0").is_err());
        assert!(parse_one(b'Z', b"II").is_err());
        assert!(parse_one(b'S', b"name\0value").is_err());
        assert!(parse_one(b'D', b"\0\x02\0\0\0\x05ab").is_err());
        assert!(parse_one(b'D', b"\0\x01\xff\xff\xff\xfe").is_err());
        assert!(parse_one(b'D', b"\xff\xff").is_err());
        assert!(parse_one(b'T', b"\0\x01col\0\0\0").is_err());
        assert!(parse_one(b'R', b"\0\0\0\x63").is_err());
        assert!(parse_one(b'R', b"\0\0\0\x05ab").is_err());
        assert!(parse_one(b'G', b"\x02\0\0").is_err());
        assert!(parse_one(b'E', b"SERROR\0").is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A small deterministic fuzz: every prefix and every single-byte corruption of a
        // valid stream must yield a message, a request for more, or an error.
        let mut stream = BytesMut::new();
        for (tag, body) in [
            (b'R', &b"\0\0\0\x0aSCRAM-SHA-256\0\0"[..]),
            (
                b'T',
                b"\0\x01id\0\0\0\0\x01\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
            ),
            (b'D', b"\0\x01\0\0\0\x011"),
            (b'E', b"SERROR\0C42P01\0Mno\0\0"),
            (b'H', b"\x01\0\x01\0\x01"),
        ] {
            stream.extend_from_slice(&frame(tag, body));
        }
        for i in 0..stream.len() {
            for flip in [0x00u8, 0xff, 0x80, 0x01] {
                let mut corrupted = stream.clone();
                corrupted[i] ^= flip;
                let mut buf = corrupted;
                while let Ok(Some(_)) = Message::parse(&mut buf, MAX_STARTUP_MESSAGE_LEN) {}
            }
        }
    }
}
