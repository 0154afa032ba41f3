//! Recording and replaying protocol exchanges. The recorder is a TCP proxy between a client
//! and a real server that notes every chunk with its direction; the replayer is a mock server
//! that plays a capture's server side and checks the client's bytes exactly.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use privaci::conn::{connect_with_nonce, QueryResult};
use privaci::conninfo::Config;
use privaci::wire::capture::{Capture, Direction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The SCRAM client nonce used when recording, injected again when replaying.
pub const NONCE: &str = "cHJpdmFjaS1jYXB0dXJlLW5vbmNlLTAx";

/// One thing the client does in a scenario.
pub enum Step {
    Query(&'static str),
    CopyOut(&'static str),
    /// COPY FROM STDIN fed `data`, then ended with CopyDone.
    CopyIn {
        sql: &'static str,
        data: fn() -> Vec<u8>,
    },
    /// COPY FROM STDIN fed `data`, then ended with CopyFail.
    CopyInFail {
        sql: &'static str,
        data: fn() -> Vec<u8>,
        reason: &'static str,
    },
}

/// What the client saw of a step.
#[derive(Debug)]
pub enum Outcome {
    Query(Result<Vec<QueryResult>, privaci::Error>),
    /// The payload bytes and the row count.
    CopyOut(Result<(Vec<u8>, u64), privaci::Error>),
    CopyIn(Result<u64, privaci::Error>),
}

/// A recorded scenario: how the client connects and what it does.
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    /// Connection settings other than host and port, which differ between record and replay.
    pub conninfo: &'static str,
    pub steps: &'static [Step],
}

/// Tables the COPY scenarios read and write, created by the recorder (as superuser) first.
pub const SETUP_SQL: &str = "CREATE TABLE copy_src (id int, name text, amount numeric(10,2), born date,
    seen timestamptz, active bool, tags text[], photo bytea);
  INSERT INTO copy_src VALUES
    (1, 'Ana Silva', 1234.50, '1980-02-29', '2024-01-02 03:04:05.678+00', true, ARRAY['a','b'], '\\x00ff10'),
    (2, NULL, -0.01, NULL, 'infinity', false, ARRAY[NULL,'x'], NULL),
    (3, 'tab\there, newline\nthere', NULL, '-infinity', NULL, NULL, '{}', '\\x');
  CREATE TABLE copy_dst (id int, name text);
  ALTER TABLE copy_src OWNER TO scram_user;
  ALTER TABLE copy_dst OWNER TO scram_user;";

const SCRAM: &str = "user=scram_user password=scram-secret dbname=postgres sslmode=disable";

/// Binary COPY data for copy_dst (int4, text): header, two tuples, trailer.
fn binary_rows() -> Vec<u8> {
    let mut v = b"PGCOPY\n\xff\r\n\0".to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    for (id, name) in [(10i32, "Zoë"), (11, "Ōta")] {
        v.extend_from_slice(&2i16.to_be_bytes());
        v.extend_from_slice(&4i32.to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&(name.len() as i32).to_be_bytes());
        v.extend_from_slice(name.as_bytes());
    }
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v
}

fn text_rows() -> Vec<u8> {
    b"20\tkept\n21\tkept too\n".to_vec()
}

fn text_rows_with_bad_value() -> Vec<u8> {
    b"30\tfine\nnot-a-number\tbad\n31\tnever\n".to_vec()
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "scram-sha-256-login",
        title: "SCRAM-SHA-256 login as a non-superuser (no TLS), one query, Terminate",
        conninfo: SCRAM,
        steps: &[Step::Query(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user",
        )],
    },
    Scenario {
        name: "md5-login",
        title: "MD5 login as a non-superuser, one query, Terminate",
        conninfo: "user=md5_user password=md5-secret dbname=postgres sslmode=disable",
        steps: &[Step::Query("SELECT current_user")],
    },
    Scenario {
        name: "error-response",
        title: "ErrorResponse to a bad query, then a good query on the same connection",
        conninfo: SCRAM,
        steps: &[
            Step::Query("SELECT * FROM no_such_table"),
            Step::Query("SELECT 1 AS one"),
        ],
    },
    Scenario {
        name: "notice-response",
        title: "NoticeResponse raised during a session",
        conninfo: SCRAM,
        steps: &[
            Step::Query("DO $$ BEGIN RAISE NOTICE 'hello from the server'; END $$"),
            Step::Query("SELECT 2 AS two"),
        ],
    },
    Scenario {
        name: "copy-out-binary",
        title: "COPY TO STDOUT (FORMAT binary) of rows with several types and NULLs",
        conninfo: SCRAM,
        steps: &[Step::CopyOut("COPY copy_src TO STDOUT (FORMAT binary)")],
    },
    Scenario {
        name: "copy-out-text",
        title: "COPY TO STDOUT in text format, with escapes and NULLs",
        conninfo: SCRAM,
        steps: &[Step::CopyOut("COPY copy_src TO STDOUT")],
    },
    Scenario {
        name: "copy-in-binary",
        title: "COPY FROM STDIN (FORMAT binary) that succeeds",
        conninfo: SCRAM,
        steps: &[
            Step::CopyIn {
                sql: "COPY copy_dst FROM STDIN (FORMAT binary)",
                data: binary_rows,
            },
            Step::Query("SELECT count(*) FROM copy_dst WHERE id IN (10, 11)"),
        ],
    },
    Scenario {
        name: "copy-in-fail",
        title: "COPY FROM STDIN ended by the client's CopyFail",
        conninfo: SCRAM,
        steps: &[
            Step::CopyInFail {
                sql: "COPY copy_dst FROM STDIN",
                data: text_rows,
                reason: "client gave up",
            },
            Step::Query("SELECT count(*) FROM copy_dst WHERE id IN (20, 21)"),
        ],
    },
    Scenario {
        name: "copy-in-error",
        title: "COPY FROM STDIN where the server raises an error on a bad value in the stream",
        conninfo: SCRAM,
        steps: &[
            Step::CopyIn {
                sql: "COPY copy_dst FROM STDIN",
                data: text_rows_with_bad_value,
            },
            Step::Query("SELECT count(*) FROM copy_dst WHERE id IN (30, 31)"),
        ],
    },
];

pub fn scenario(name: &str) -> &'static Scenario {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// Connection settings without the machine's environment or home directory.
pub fn config(s: &str) -> Config {
    Config::parse_with(s, &|_| None, None).unwrap()
}

/// Runs a scenario's client side against host:port: connect with the fixed nonce, do each
/// step, close. Returns the authentication method and what the client saw of each step.
pub async fn run_client(
    port: u16,
    scenario: &Scenario,
) -> (privaci::auth::AuthMethod, Vec<Outcome>) {
    let cfg = config(&format!("host=127.0.0.1 port={port} {}", scenario.conninfo));
    let mut conn = connect_with_nonce(&cfg, Some(NONCE))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
    let method = conn.info().auth_method;
    let mut outcomes = Vec::new();
    for step in scenario.steps {
        outcomes.push(match step {
            Step::Query(q) => Outcome::Query(conn.simple_query(q).await),
            Step::CopyOut(sql) => Outcome::CopyOut(
                async {
                    let mut out = conn.copy_out(sql).await?;
                    let bytes = out.collect_payloads().await?;
                    Ok((bytes, out.rows().unwrap_or(0)))
                }
                .await,
            ),
            Step::CopyIn { sql, data } => Outcome::CopyIn(
                async {
                    let mut sink = conn.copy_in(sql).await?;
                    sink.write(&data()).await?;
                    sink.finish().await
                }
                .await,
            ),
            Step::CopyInFail { sql, data, reason } => Outcome::CopyIn(
                async {
                    let mut sink = conn.copy_in(sql).await?;
                    sink.write(&data()).await?;
                    Err(sink.fail(reason).await)
                }
                .await,
            ),
        });
    }
    conn.close().await.unwrap();
    (method, outcomes)
}

/// Chunks seen by the recorder, in order, with their direction.
type ChunkLog = Arc<Mutex<Vec<(Direction, Vec<u8>)>>>;

/// A proxy in front of `upstream_port` that records one connection's chunks.
pub struct Recorder {
    pub port: u16,
    chunks: ChunkLog,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start(upstream_port: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let log = chunks.clone();
        let task = tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let server = TcpStream::connect(("127.0.0.1", upstream_port))
                .await
                .unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let a = tokio::spawn(pump(cr, sw, Direction::Client, log.clone()));
            let b = tokio::spawn(pump(sr, cw, Direction::Server, log));
            let _ = tokio::join!(a, b);
        });
        Recorder { port, chunks, task }
    }

    /// Waits for the connection to end and returns the capture.
    pub async fn finish(self, headers: Vec<(String, String)>) -> Capture {
        let _ = self.task.await;
        let chunks = self.chunks.lock().unwrap().clone();
        Capture::from_chunks(headers, &chunks).unwrap()
    }
}

/// Copies one direction, noting each chunk before forwarding it, so that a reply is always
/// noted after the message it answers.
async fn pump<R, W>(mut from: R, mut to: W, direction: Direction, log: ChunkLog)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        log.lock().unwrap().push((direction, buf[..n].to_vec()));
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A mock server that plays `capture`'s server messages and checks that the client sends
/// exactly the captured client messages, in order. Returns the port and a handle whose result
/// says whether the client matched.
pub async fn replay_server(capture: Capture) -> (u16, tokio::task::JoinHandle<Result<(), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.map_err(|e| e.to_string())?;
        for (i, m) in capture.messages.iter().enumerate() {
            match m.direction {
                Direction::Server => sock
                    .write_all(&m.bytes)
                    .await
                    .map_err(|e| format!("message {}: {e}", i + 1))?,
                Direction::Client => {
                    let mut got = vec![0u8; m.bytes.len()];
                    sock.read_exact(&mut got)
                        .await
                        .map_err(|e| format!("message {}: client sent too little: {e}", i + 1))?;
                    if got != m.bytes.as_ref() {
                        let show = |b: &[u8]| {
                            Capture {
                                headers: vec![],
                                messages: vec![privaci::wire::capture::CapturedMessage {
                                    direction: Direction::Client,
                                    bytes: bytes::Bytes::copy_from_slice(b),
                                }],
                            }
                            .render()
                        };
                        return Err(format!(
                            "message {} differs.\nexpected:{}\ngot:{}",
                            i + 1,
                            show(&m.bytes),
                            show(&got)
                        ));
                    }
                }
            }
        }
        // After the captured Terminate the client must close without sending more.
        let mut rest = Vec::new();
        sock.read_to_end(&mut rest)
            .await
            .map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "client sent {} bytes after the capture ended",
                rest.len()
            ));
        }
        Ok(())
    });
    (port, handle)
}

pub fn capture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("protocol-captures")
        .join(format!("{name}.txt"))
}
