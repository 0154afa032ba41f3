//! Replays of exchanges recorded from a real PostgreSQL 15 (protocol-captures/): a mock
//! server plays the server side and the client's bytes must match the recording exactly,
//! with the SCRAM nonce injected from the capture.

mod support;

use bytes::{BufMut, BytesMut};
use privaci::auth::scram::{ChannelBinding, ScramSha256};
use privaci::auth::AuthMethod;
use privaci::wire::capture::{Capture, Direction};
use support::capture::{capture_path, replay_server, run_client, scenario, Outcome};

fn load(name: &str) -> Capture {
    let path = capture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Capture::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn replay(name: &str) -> (AuthMethod, Vec<Outcome>) {
    let capture = load(name);
    let (port, server) = replay_server(capture).await;
    let seen = run_client(port, scenario(name)).await;
    server
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    seen
}

fn query(o: &Outcome) -> &Result<Vec<privaci::conn::QueryResult>, privaci::Error> {
    match o {
        Outcome::Query(r) => r,
        other => panic!("expected a query outcome, got {other:?}"),
    }
}

fn first_value(o: &Outcome) -> String {
    query(o).as_ref().unwrap()[0]
        .get(0, 0)
        .unwrap()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn scram_sha_256_login() {
    let (method, outcomes) = replay("scram-sha-256-login").await;
    assert_eq!(method, AuthMethod::ScramSha256);
    let rows = &query(&outcomes[0]).as_ref().unwrap()[0];
    assert_eq!(rows.get(0, 0).unwrap(), Some("scram_user"));
    assert_eq!(
        rows.get(0, 1).unwrap(),
        Some("f"),
        "recorded as a non-superuser"
    );
}

#[tokio::test]
async fn md5_login() {
    let (method, outcomes) = replay("md5-login").await;
    assert_eq!(method, AuthMethod::Md5);
    assert_eq!(first_value(&outcomes[0]), "md5_user");
}

#[tokio::test]
async fn error_response_then_recovery() {
    let (_, outcomes) = replay("error-response").await;
    let err = query(&outcomes[0]).as_ref().unwrap_err();
    assert_eq!(err.code(), Some("42P01"));
    assert_eq!(err.db_error().unwrap().position, Some(15));
    assert_eq!(first_value(&outcomes[1]), "1");
}

#[tokio::test]
async fn notice_response() {
    let capture = load("notice-response");
    assert!(
        capture
            .messages
            .iter()
            .any(|m| m.direction == Direction::Server && m.bytes[0] == b'N'),
        "the capture holds a NoticeResponse"
    );
    let (_, outcomes) = replay("notice-response").await;
    assert!(query(&outcomes[0]).is_ok());
    assert_eq!(first_value(&outcomes[1]), "2");
}

#[tokio::test]
async fn copy_out_binary() {
    let (_, outcomes) = replay("copy-out-binary").await;
    let Outcome::CopyOut(Ok((bytes, rows))) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert_eq!(*rows, 3);
    assert!(
        bytes.starts_with(b"PGCOPY\n\xff\r\n\0"),
        "binary COPY signature"
    );
    assert!(bytes.ends_with(&[0xff, 0xff]), "binary COPY trailer");
    // Every payload of the capture arrives, in order, with nothing added.
    let capture = load("copy-out-binary");
    let expected: Vec<u8> = capture
        .messages
        .iter()
        .filter(|m| m.direction == Direction::Server && m.bytes[0] == b'd')
        .flat_map(|m| m.bytes[5..].to_vec())
        .collect();
    assert_eq!(bytes, &expected);
}

#[tokio::test]
async fn copy_out_text() {
    let (_, outcomes) = replay("copy-out-text").await;
    let Outcome::CopyOut(Ok((bytes, rows))) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert_eq!(*rows, 3);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with("1\tAna Silva\t1234.50\t1980-02-29\t"),
        "{text}"
    );
    assert!(
        text.contains("2\t\\N\t-0.01\t\\N\tinfinity\tf\t{NULL,x}\t\\N\n"),
        "{text}"
    );
    assert!(text.contains("tab\\there, newline\\nthere"), "{text}");
}

#[tokio::test]
async fn copy_in_binary() {
    let (_, outcomes) = replay("copy-in-binary").await;
    let Outcome::CopyIn(Ok(rows)) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert_eq!(*rows, 2);
    assert_eq!(first_value(&outcomes[1]), "2");
}

#[tokio::test]
async fn copy_in_fail() {
    let (_, outcomes) = replay("copy-in-fail").await;
    let Outcome::CopyIn(Err(err)) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert_eq!(err.code(), Some("57014"));
    assert!(err.to_string().contains("client gave up"), "{err}");
    assert_eq!(first_value(&outcomes[1]), "0", "nothing was loaded");
}

#[tokio::test]
async fn copy_in_error() {
    let (_, outcomes) = replay("copy-in-error").await;
    let Outcome::CopyIn(Err(err)) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert_eq!(err.code(), Some("22P02"));
    assert!(
        err.db_error()
            .unwrap()
            .where_
            .as_deref()
            .unwrap_or("")
            .contains("COPY copy_dst, line 2"),
        "{err:?}"
    );
    assert_eq!(first_value(&outcomes[1]), "0", "nothing was loaded");
}

#[test]
fn every_capture_has_a_replay_test() {
    let dir = capture_path("x").parent().unwrap().to_path_buf();
    let this = include_str!("replay.rs");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".txt") {
            assert!(
                this.contains(&format!("replay(\"{stem}\")")),
                "no replay test for {name}"
            );
            load(stem);
        }
    }
}

/// The SASL payload of an authentication or password message: after the tag, length and
/// (for the server's) the 4-byte request code, or (for the initial response) mechanism and
/// length.
fn sasl_payloads(capture: &Capture) -> Vec<Vec<u8>> {
    capture
        .messages
        .iter()
        .filter_map(|m| match (m.direction, m.bytes[0]) {
            (Direction::Server, b'R') if matches!(m.bytes[8], 11 | 12) => {
                Some(m.bytes[9..].to_vec())
            }
            (Direction::Client, b'p') => {
                let body = &m.bytes[5..];
                Some(match body.iter().position(|&b| b == 0) {
                    Some(nul) if body.starts_with(b"SCRAM-SHA-256\0") => body[nul + 5..].to_vec(),
                    _ => body.to_vec(),
                })
            }
            _ => None,
        })
        .collect()
}

#[test]
fn scram_state_machine_matches_the_recorded_exchange() {
    let capture = load("scram-sha-256-login");
    let nonce = capture.header("scram-nonce").unwrap();
    let payloads = sasl_payloads(&capture);
    // client-first, server-first, client-final, server-final
    assert_eq!(payloads.len(), 4);
    let mut scram = ScramSha256::with_nonce(b"scram-secret", ChannelBinding::Unsupported, nonce);
    assert_eq!(scram.message(), &payloads[0][..]);
    scram.update(&payloads[1]).unwrap();
    assert_eq!(
        scram.message(),
        &payloads[2][..],
        "client-final message differs from what the server accepted"
    );
    scram.finish(&payloads[3]).unwrap();

    // The wrong password yields a different proof.
    let mut wrong = ScramSha256::with_nonce(b"scram-secreT", ChannelBinding::Unsupported, nonce);
    wrong.update(&payloads[1]).unwrap();
    assert_ne!(wrong.message(), &payloads[2][..]);
}

#[tokio::test]
async fn tampered_server_signature_is_refused() {
    let mut capture = load("scram-sha-256-login");
    let at = capture
        .messages
        .iter()
        .position(|m| m.direction == Direction::Server && m.bytes[0] == b'R' && m.bytes[8] == 12)
        .unwrap();
    // Replace the server signature with another valid-looking one.
    let mut forged = BytesMut::new();
    let body = b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    forged.put_u8(b'R');
    forged.put_i32(4 + 4 + body.len() as i32);
    forged.put_i32(12);
    forged.put_slice(body);
    capture.messages[at].bytes = forged.freeze();
    capture.messages.truncate(at + 1);
    let (port, server) = replay_server(capture).await;
    let cfg = support::capture::config(&format!(
        "host=127.0.0.1 port={port} {}",
        scenario("scram-sha-256-login").conninfo
    ));
    let err = privaci::conn::connect_with_nonce(&cfg, Some(support::capture::NONCE))
        .await
        .err()
        .expect("forged signature accepted");
    assert_eq!(err.kind(), privaci::ErrorKind::Auth);
    assert!(
        err.to_string().contains("server signature is wrong"),
        "{err}"
    );
    server.abort();
}
