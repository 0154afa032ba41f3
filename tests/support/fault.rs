//! A TCP proxy that cuts connections in the middle of a transfer, to test how a run survives
//! a dropped source or target connection. It counts the bytes one direction carries on each
//! connection and drops both sockets when a connection crosses `cut_after` bytes, up to
//! `max_cuts` times (or without limit). The first `spare` connections are never cut (the
//! run's coordinator holds the snapshot on the first).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Count server-to-client bytes (a COPY OUT from the source).
    ServerToClient,
    /// Count client-to-server bytes (a COPY IN into the target).
    ClientToServer,
    /// Cut when the server answers a COMMIT (its CommandComplete), dropping that answer: the
    /// transaction committed, but the client never learns it did.
    CommitAnswer,
}

/// A CommandComplete message for COMMIT, as the server sends it.
const COMMIT_ANSWER: &[u8] = b"C\0\0\0\x0bCOMMIT\0";

pub struct FaultProxy {
    pub port: u16,
    cuts: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(
        upstream: u16,
        direction: Cut,
        cut_after: u64,
        max_cuts: Option<u32>,
        spare: u32,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(AtomicU32::new(0));
        let c = cuts.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let cuts = c.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let may_cut = n >= spare;
                    let limit = |cuts: &AtomicU32| {
                        may_cut && max_cuts.is_none_or(|m| cuts.load(Ordering::SeqCst) < m)
                    };
                    let s2c = pump(
                        &mut sr,
                        &mut cw,
                        direction != Cut::ClientToServer && limit(&cuts),
                        (direction == Cut::CommitAnswer).then_some(COMMIT_ANSWER),
                        cut_after,
                        &cuts,
                        max_cuts,
                    );
                    let c2s = pump(
                        &mut cr,
                        &mut sw,
                        direction == Cut::ClientToServer && limit(&cuts),
                        None,
                        cut_after,
                        &cuts,
                        max_cuts,
                    );
                    // When either side ends (or is cut), both sockets are dropped.
                    tokio::select! { _ = s2c => {}, _ = c2s => {} }
                });
            }
        });
        FaultProxy { port, cuts, task }
    }

    pub fn cuts(&self) -> u32 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump<R: AsyncReadExt + Unpin, W: AsyncWriteExt + Unpin>(
    from: &mut R,
    to: &mut W,
    counted: bool,
    pattern: Option<&[u8]>,
    cut_after: u64,
    cuts: &AtomicU32,
    max_cuts: Option<u32>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if counted {
            total += n as u64;
            // With a pattern, a chunk holding it is the cut (the count only delays it).
            let hit = match pattern {
                Some(p) => total > cut_after && buf[..n].windows(p.len()).any(|w| w == p),
                None => total > cut_after,
            };
            if hit {
                let prior = cuts.fetch_add(1, Ordering::SeqCst);
                if max_cuts.is_none_or(|m| prior < m) {
                    return;
                }
                cuts.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
