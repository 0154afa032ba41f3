//! Recording and replaying protocol exchanges. The recorder is a TCP proxy between a client
//! and a real server that notes every chunk with its direction; the replayer is a mock server
//! that plays a capture's server side and checks the client's bytes exactly.

use std::sync::{Arc, Mutex};

use privaci::conn::{connect_with_nonce, QueryResult};
use privaci::conninfo::Config;
use privaci::wire::capture::{Capture, Direction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The SCRAM client nonce used when recording, injected again when replaying.
pub const NONCE: &str = "cHJpdmFjaS1jYXB0dXJlLW5vbmNlLTAx";

/// A recorded scenario: how the client connects and which simple queries it runs.
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    /// Connection settings other than host and port, which differ between record and replay.
    pub conninfo: &'static str,
    pub queries: &'static [&'static str],
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "scram-sha-256-login",
        title: "SCRAM-SHA-256 login as a non-superuser (no TLS), one query, Terminate",
        conninfo: "user=scram_user password=scram-secret dbname=postgres sslmode=disable",
        queries: &["SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"],
    },
    Scenario {
        name: "md5-login",
        title: "MD5 login as a non-superuser, one query, Terminate",
        conninfo: "user=md5_user password=md5-secret dbname=postgres sslmode=disable",
        queries: &["SELECT current_user"],
    },
    Scenario {
        name: "error-response",
        title: "ErrorResponse to a bad query, then a good query on the same connection",
        conninfo: "user=scram_user password=scram-secret dbname=postgres sslmode=disable",
        queries: &["SELECT * FROM no_such_table", "SELECT 1 AS one"],
    },
    Scenario {
        name: "notice-response",
        title: "NoticeResponse raised during a session",
        conninfo: "user=scram_user password=scram-secret dbname=postgres sslmode=disable",
        queries: &[
            "DO $$ BEGIN RAISE NOTICE 'hello from the server'; END $$",
            "SELECT 2 AS two",
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

/// Runs a scenario's client side against host:port: connect with the fixed nonce, run each
/// query, close. Returns what the client saw of each query.
pub async fn run_client(
    port: u16,
    scenario: &Scenario,
) -> (
    privaci::auth::AuthMethod,
    Vec<Result<Vec<QueryResult>, privaci::Error>>,
) {
    let cfg = config(&format!("host=127.0.0.1 port={port} {}", scenario.conninfo));
    let mut conn = connect_with_nonce(&cfg, Some(NONCE))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
    let method = conn.info().auth_method;
    let mut results = Vec::new();
    for q in scenario.queries {
        results.push(conn.simple_query(q).await);
    }
    conn.close().await.unwrap();
    (method, results)
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
