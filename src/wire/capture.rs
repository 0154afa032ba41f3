//! Recorded protocol exchanges: a human-readable text format (see protocol-captures/README.md)
//! with the messages of both directions in the order they were sent. Tests replay the server
//! side and check the client's bytes one for one.

use std::fmt::Write as _;

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frontend to backend.
    Client,
    /// Backend to frontend.
    Server,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    pub direction: Direction,
    /// The whole message: tag (if any), length and body.
    pub bytes: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    pub headers: Vec<(String, String)>,
    pub messages: Vec<CapturedMessage>,
}

impl Capture {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Splits recorded socket chunks (in the order the recorder saw them) into messages.
    /// Each direction is reassembled separately; a message takes its place in the sequence
    /// at the chunk that completes it, which keeps the causal order of the exchange.
    pub fn from_chunks(
        headers: Vec<(String, String)>,
        chunks: &[(Direction, Vec<u8>)],
    ) -> Result<Capture, String> {
        let mut splitter = [
            Splitter::new(Direction::Client),
            Splitter::new(Direction::Server),
        ];
        let mut messages = Vec::new();
        for (direction, chunk) in chunks {
            let i = (*direction == Direction::Server) as usize;
            splitter[i].buf.extend_from_slice(chunk);
            loop {
                let next = splitter[i].next_len()?;
                let Some(len) = next else { break };
                let bytes: Vec<u8> = splitter[i].buf.drain(..len).collect();
                // After the client's SSLRequest the server answers with one bare byte.
                if *direction == Direction::Client && is_ssl_request(&bytes) {
                    splitter[1].expect_ssl_answer = true;
                }
                if *direction == Direction::Server && splitter[1].expect_ssl_answer {
                    splitter[1].expect_ssl_answer = false;
                    if bytes == b"N" {
                        splitter[0].untagged = true;
                    }
                }
                messages.push(CapturedMessage {
                    direction: *direction,
                    bytes: Bytes::from(bytes),
                });
            }
        }
        for s in &splitter {
            if !s.buf.is_empty() {
                return Err(format!(
                    "{} bytes of an incomplete {:?} message at the end of the recording",
                    s.buf.len(),
                    s.direction
                ));
            }
        }
        Ok(Capture { headers, messages })
    }

    /// Parses the text format.
    pub fn parse(text: &str) -> Result<Capture, String> {
        let mut capture = Capture::default();
        // The message being read: direction, bytes so far, declared size, its line.
        let mut current: Option<(Direction, Vec<u8>, usize, usize)> = None;
        fn finish(
            current: Option<(Direction, Vec<u8>, usize, usize)>,
            capture: &mut Capture,
        ) -> Result<(), String> {
            if let Some((direction, bytes, declared, lineno)) = current {
                if bytes.len() != declared {
                    return Err(format!(
                        "line {lineno}: message declares {declared} bytes but has {}",
                        bytes.len()
                    ));
                }
                capture.messages.push(CapturedMessage {
                    direction,
                    bytes: Bytes::from(bytes),
                });
            }
            Ok(())
        }
        for (n, line) in text.lines().enumerate() {
            let lineno = n + 1;
            if let Some(comment) = line.strip_prefix('#') {
                // "# key: value" lines before the first message are headers.
                if let Some((key, value)) = comment.trim().split_once(':') {
                    if current.is_none() && capture.messages.is_empty() && !key.contains(' ') {
                        capture
                            .headers
                            .push((key.trim().to_string(), value.trim().to_string()));
                    }
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                let Some((_, bytes, _, _)) = current.as_mut() else {
                    return Err(format!(
                        "line {lineno}: hex continuation without a message line"
                    ));
                };
                let hex = line.split('|').next().unwrap_or("");
                decode_hex(hex, bytes).map_err(|e| format!("line {lineno}: {e}"))?;
                continue;
            }
            finish(current.take(), &mut capture)?;
            let mut words = line.split_whitespace();
            let direction = match words.next() {
                Some("C") => Direction::Client,
                Some("S") => Direction::Server,
                other => return Err(format!("line {lineno}: expected C or S, found {other:?}")),
            };
            words
                .next()
                .ok_or_else(|| format!("line {lineno}: message name missing"))?;
            let declared: usize = words
                .next()
                .and_then(|w| w.strip_suffix('B'))
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("line {lineno}: byte count (like 24B) missing"))?;
            current = Some((direction, Vec::with_capacity(declared), declared, lineno));
        }
        finish(current, &mut capture)?;
        Ok(capture)
    }

    /// Renders the text format: a header, then per message a line with direction, name and
    /// size, and the bytes as hex, 16 to a line, with a printable rendering after `|`.
    pub fn render(&self) -> String {
        let mut out =
            String::from("# privaci protocol capture v1 (format: protocol-captures/README.md)\n");
        for (k, v) in &self.headers {
            let _ = writeln!(out, "# {k}: {v}");
        }
        let mut first_client = true;
        let mut after_ssl_request = false;
        for m in &self.messages {
            let (dir, name) = match m.direction {
                Direction::Client => {
                    let name = frontend_name(&m.bytes, first_client);
                    first_client = matches!(name, "SSLRequest");
                    after_ssl_request = name == "SSLRequest";
                    ("C", name)
                }
                Direction::Server if after_ssl_request => {
                    after_ssl_request = false;
                    first_client = m.bytes.as_ref() == b"N";
                    ("S", "SSLResponse")
                }
                Direction::Server => ("S", backend_name(&m.bytes)),
            };
            let _ = writeln!(out, "\n{dir} {name} {}B", m.bytes.len());
            for row in m.bytes.chunks(16) {
                let mut hex = String::with_capacity(48);
                for b in row {
                    let _ = write!(hex, "{b:02x} ");
                }
                let text: String = row
                    .iter()
                    .map(|&b| {
                        if (0x20..0x7f).contains(&b) {
                            b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                let _ = writeln!(out, "    {hex:<48}| {text}");
            }
        }
        out
    }
}

struct Splitter {
    direction: Direction,
    buf: Vec<u8>,
    /// The next client message has no tag (startup, SSLRequest, cancel).
    untagged: bool,
    expect_ssl_answer: bool,
}

impl Splitter {
    fn new(direction: Direction) -> Splitter {
        Splitter {
            direction,
            buf: Vec::new(),
            untagged: direction == Direction::Client,
            expect_ssl_answer: false,
        }
    }

    fn next_len(&mut self) -> Result<Option<usize>, String> {
        if self.direction == Direction::Server && self.expect_ssl_answer {
            return Ok((!self.buf.is_empty()).then_some(1));
        }
        if self.untagged {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let len =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if len < 8 {
                return Err(format!(
                    "untagged client message with impossible length {len}"
                ));
            }
            if self.buf.len() < len {
                return Ok(None);
            }
            // After an SSLRequest the next message is untagged again (if the answer is N);
            // the SSLResponse handling in from_chunks decides that.
            self.untagged = false;
            return Ok(Some(len));
        }
        match super::backend::frame_len(&self.buf, usize::MAX - 8).map_err(|e| e.0)? {
            Some(len) if self.buf.len() >= len => Ok(Some(len)),
            _ => Ok(None),
        }
    }
}

fn is_ssl_request(bytes: &[u8]) -> bool {
    bytes == [0, 0, 0, 8, 4, 210, 22, 47]
}

fn decode_hex(hex: &str, out: &mut Vec<u8>) -> Result<(), String> {
    for word in hex.split_whitespace() {
        if word.len() % 2 != 0 {
            return Err(format!("odd number of hex digits in {word:?}"));
        }
        for pair in word.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            out.push(u8::from_str_radix(s, 16).map_err(|_| format!("{s:?} is not hex"))?);
        }
    }
    Ok(())
}

/// The name of a frontend message, for the capture's readers.
pub fn frontend_name(bytes: &[u8], untagged: bool) -> &'static str {
    if untagged {
        return match bytes.get(4..8) {
            Some([0, 3, 0, 0]) => "StartupMessage",
            Some([4, 210, 22, 47]) => "SSLRequest",
            Some([4, 210, 22, 46]) => "CancelRequest",
            Some([4, 210, 22, 48]) => "GSSENCRequest",
            _ => "Untagged",
        };
    }
    match bytes.first() {
        Some(b'p') => "PasswordMessage/SASLResponse",
        Some(b'Q') => "Query",
        Some(b'X') => "Terminate",
        Some(b'd') => "CopyData",
        Some(b'c') => "CopyDone",
        Some(b'f') => "CopyFail",
        Some(b'P') => "Parse",
        Some(b'B') => "Bind",
        Some(b'E') => "Execute",
        Some(b'S') => "Sync",
        _ => "Unknown",
    }
}

/// The name of a backend message, with the authentication request spelled out.
pub fn backend_name(bytes: &[u8]) -> &'static str {
    match bytes.first() {
        Some(b'R') => match bytes.get(5..9) {
            Some([0, 0, 0, 0]) => "AuthenticationOk",
            Some([0, 0, 0, 3]) => "AuthenticationCleartextPassword",
            Some([0, 0, 0, 5]) => "AuthenticationMD5Password",
            Some([0, 0, 0, 10]) => "AuthenticationSASL",
            Some([0, 0, 0, 11]) => "AuthenticationSASLContinue",
            Some([0, 0, 0, 12]) => "AuthenticationSASLFinal",
            _ => "Authentication",
        },
        Some(b'K') => "BackendKeyData",
        Some(b'S') => "ParameterStatus",
        Some(b'Z') => "ReadyForQuery",
        Some(b'T') => "RowDescription",
        Some(b'D') => "DataRow",
        Some(b'C') => "CommandComplete",
        Some(b'I') => "EmptyQueryResponse",
        Some(b'E') => "ErrorResponse",
        Some(b'N') => "NoticeResponse",
        Some(b'A') => "NotificationResponse",
        Some(b'v') => "NegotiateProtocolVersion",
        Some(b'G') => "CopyInResponse",
        Some(b'H') => "CopyOutResponse",
        Some(b'W') => "CopyBothResponse",
        Some(b'd') => "CopyData",
        Some(b'c') => "CopyDone",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_into_messages_and_round_trip_through_text() {
        let startup = b"\x00\x00\x00\x09\x00\x03\x00\x00\x00".to_vec();
        let ok = b"R\x00\x00\x00\x08\x00\x00\x00\x00".to_vec();
        let ready = b"Z\x00\x00\x00\x05I".to_vec();
        let query = b"Q\x00\x00\x00\x0dSELECT 1\x00".to_vec();
        // The server's two messages arrive split across three chunks.
        let mut server = ok.clone();
        server.extend_from_slice(&ready);
        let chunks = vec![
            (Direction::Client, startup[..3].to_vec()),
            (Direction::Client, startup[3..].to_vec()),
            (Direction::Server, server[..4].to_vec()),
            (Direction::Server, server[4..12].to_vec()),
            (Direction::Server, server[12..].to_vec()),
            (Direction::Client, query.clone()),
        ];
        let capture = Capture::from_chunks(vec![("title".into(), "test".into())], &chunks).unwrap();
        let got: Vec<(Direction, &[u8])> = capture
            .messages
            .iter()
            .map(|m| (m.direction, m.bytes.as_ref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Direction::Client, &startup[..]),
                (Direction::Server, &ok[..]),
                (Direction::Server, &ready[..]),
                (Direction::Client, &query[..]),
            ]
        );
        let text = capture.render();
        assert!(text.contains("C StartupMessage 9B"), "{text}");
        assert!(text.contains("S AuthenticationOk 9B"), "{text}");
        assert!(text.contains("| Q....SELECT 1."), "{text}");
        assert_eq!(Capture::parse(&text).unwrap(), capture);
    }

    #[test]
    fn ssl_request_answered_with_n() {
        let ssl = vec![0, 0, 0, 8, 4, 210, 22, 47];
        let startup = b"\x00\x00\x00\x09\x00\x03\x00\x00\x00".to_vec();
        let chunks = vec![
            (Direction::Client, ssl.clone()),
            (Direction::Server, b"N".to_vec()),
            (Direction::Client, startup.clone()),
        ];
        let capture = Capture::from_chunks(vec![], &chunks).unwrap();
        assert_eq!(capture.messages.len(), 3);
        let text = capture.render();
        assert!(
            text.contains("S SSLResponse 1B") && text.contains("C StartupMessage 9B"),
            "{text}"
        );
    }

    #[test]
    fn parse_errors_name_the_line() {
        assert!(Capture::parse("X Foo 1B\n").unwrap_err().contains("line 1"));
        assert!(Capture::parse("C Query 2B\n    zz\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(Capture::parse("C Query 3B\n    51 00\n")
            .unwrap_err()
            .contains("line 1: message declares 3 bytes"));
        assert!(Capture::from_chunks(vec![], &[(Direction::Server, b"Z\0\0".to_vec())]).is_err());
    }
}
