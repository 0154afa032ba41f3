//! A delaying TCP proxy for the benchmarks: every byte read on one side is written to the
//! other `delay` later, in both directions, so a round trip through it costs twice the delay
//! (a server in another region, behind a VPN, or in the cloud seen from a laptop). It adds
//! latency only: nothing is throttled, and bytes keep their order.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A proxy running on its own thread until the process ends.
pub struct DelayProxy {
    pub port: u16,
}

impl DelayProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards each connection to `upstream_port`,
    /// delaying each direction by `delay`.
    pub fn start(upstream_port: u16, delay: Duration) -> DelayProxy {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
                tx.send(listener.local_addr().expect("proxy address").port())
                    .expect("proxy port");
                let upstream: SocketAddr = ([127, 0, 0, 1], upstream_port).into();
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        tokio::spawn(pipe(cr, sw, delay));
                        tokio::spawn(pipe(sr, cw, delay));
                    });
                }
            });
        });
        DelayProxy {
            port: rx.recv().expect("proxy started"),
        }
    }
}

/// Reads `from` as fast as it comes and writes each chunk to `to` once `delay` has passed since
/// it was read; the end of input is passed on (after the delay) as a shutdown.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    // Bounded: a slow reader on the far side slows this side down, as TCP would.
    let (tx, mut rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>(256);
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at + delay).await;
            match chunk {
                Some(c) => {
                    if to.write_all(&c).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send((Instant::now(), None)).await;
                break;
            }
            Ok(n) => {
                if tx
                    .send((Instant::now(), Some(buf[..n].to_vec())))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
