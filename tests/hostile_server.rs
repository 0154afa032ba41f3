//! Servers that misbehave: the client must refuse them with a clear error, never panic,
//! and never allocate what a hostile length field asks for.

use privaci::conn::connect;
use privaci::conninfo::Config;
use privaci::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-connection server that reads the client's first message, then sends `reply` and
/// waits for the client to hang up; with nothing to send it hangs up at once.
async fn serve(reply: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 512];
        let _ = sock.read(&mut first).await;
        if reply.is_empty() {
            return;
        }
        let _ = sock.write_all(&reply).await;
        let _ = sock.read(&mut first).await;
    });
    port
}

fn config(port: u16, extra: &str) -> Config {
    Config::parse_with(
        &format!("host=127.0.0.1 port={port} user=u password=p connect_timeout=5 {extra}"),
        &|_| None,
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn unencrypted_bytes_after_tls_acceptance_are_refused() {
    // 'S' followed by a forged AuthenticationOk in the clear (CVE-2021-23222).
    let port = serve(b"SR\0\0\0\x08\0\0\0\0".to_vec()).await;
    let err = connect(&config(port, "sslmode=require"))
        .await
        .err()
        .expect("accepted injected bytes");
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(
        err.to_string()
            .contains("unencrypted data after the TLS response"),
        "{err}"
    );
}

#[tokio::test]
async fn server_refusing_tls_when_required() {
    let port = serve(b"N".to_vec()).await;
    let err = connect(&config(port, "sslmode=require"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(
        err.to_string()
            .contains("does not support TLS, but sslmode=require requires it"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_message_before_authentication() {
    // An AuthenticationSASL that claims to be 1 GiB long.
    let port = serve(b"R\x40\0\0\0\0\0\0\x0a".to_vec()).await;
    let err = connect(&config(port, "sslmode=disable"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[tokio::test]
async fn not_a_postgres_server() {
    let port = serve(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
    let err = connect(&config(port, "sslmode=disable"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    let port = serve(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
    let err = connect(&config(port, "sslmode=prefer"))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("is it a PostgreSQL server?"),
        "{err}"
    );
}

#[tokio::test]
async fn connection_closed_during_startup() {
    let port = serve(Vec::new()).await;
    let err = connect(&config(port, "sslmode=disable"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("closed the connection"), "{err}");
}

#[tokio::test]
async fn unsupported_authentication_method() {
    // AuthenticationGSS.
    let port = serve(b"R\0\0\0\x08\0\0\0\x07".to_vec()).await;
    let err = connect(&config(port, "sslmode=disable"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(
        err.to_string()
            .contains("GSSAPI authentication, which privaci does not support"),
        "{err}"
    );
}
