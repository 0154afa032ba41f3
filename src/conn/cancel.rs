//! CancelRequest: asks the server, on a new connection, to cancel the query running on
//! another. It needs only the backend's key data and where that backend lives.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::conninfo::{Host, Target};
use crate::error::{Error, ErrorKind};
use crate::wire::frontend;

#[derive(Debug, Clone)]
pub struct CancelToken {
    pub(crate) target: Target,
    /// The address the connection reached (TCP); `None` for a Unix socket.
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
}

impl CancelToken {
    /// Sends the cancel request and waits for the server to close that connection, which it
    /// does once it has signalled the backend. Cancellation is best effort: the query may
    /// have finished already.
    pub async fn cancel(&self) -> Result<(), Error> {
        let mut msg = BytesMut::new();
        frontend::cancel_request(self.process_id, self.secret_key, &mut msg);
        let fail = |e: std::io::Error| {
            Error::new(
                ErrorKind::Connect,
                format!("could not send cancel request to {}: {e}", self.target),
            )
        };
        // Like libpq before PostgreSQL 17, the request goes in plaintext: the server handles
        // it before pg_hba.conf, and it carries nothing but the key.
        let work = async {
            match (&self.target.host, self.addr) {
                (Host::Unix(dir), _) => {
                    let mut s =
                        UnixStream::connect(dir.join(format!(".s.PGSQL.{}", self.target.port)))
                            .await
                            .map_err(fail)?;
                    s.write_all(&msg).await.map_err(fail)?;
                    let _ = s.read(&mut [0u8; 1]).await;
                }
                (_, Some(addr)) => {
                    let mut s = TcpStream::connect(addr).await.map_err(fail)?;
                    s.write_all(&msg).await.map_err(fail)?;
                    let _ = s.read(&mut [0u8; 1]).await;
                }
                (Host::Tcp(_), None) => {
                    return Err(Error::new(
                        ErrorKind::Connect,
                        "no address to send the cancel request to",
                    ))
                }
            }
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Connect,
                    format!("cancel request to {} timed out", self.target),
                ))
            })
    }
}
