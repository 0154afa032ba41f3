//! The run's own connections: the coordinator's target session (which holds the run lock and
//! is re-established, lock included, when the target restarts), and how many workers the two
//! servers have connection slots for.

use super::state;
use super::worker::{retry_wait, MAX_RETRIES};
use crate::conn::{connect, Connection};
use crate::conninfo::Config;
use crate::error::{Error, ErrorKind};

/// Looks at a taken run lock this many times, 200 ms apart, before refusing.
const LOCK_TRIES: u32 = 10;

/// The coordinator's target session. It holds the run lock; after a dropped connection it
/// reconnects and takes the lock again before doing anything.
pub struct TargetLink {
    config: Config,
    conn: Option<Connection>,
    /// The target's round-trip counter, kept across reconnections.
    round_trips: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Called with each retry, for the progress display.
    pub on_retry: Box<dyn Fn(&str) + Send + Sync>,
}

impl TargetLink {
    /// Connects; `Ok(Err(message))` when another run holds the lock.
    pub async fn open(config: &Config) -> Result<Result<TargetLink, String>, Error> {
        let mut conn = connect(config).await.map_err(|e| e.context("target"))?;
        // A run killed a moment ago still holds the lock until the server notices its
        // session is gone: look again for a little while before refusing.
        let mut tries = 0;
        while let Some(other) = state::take_run_lock(&mut conn).await? {
            tries += 1;
            if tries > LOCK_TRIES {
                let _ = conn.close().await;
                return Ok(Err(other));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        conn.execute("SET synchronous_commit = off").await?;
        Ok(Ok(TargetLink {
            config: config.clone(),
            conn: Some(conn),
            round_trips: None,
            on_retry: Box::new(|_| {}),
        }))
    }

    /// Counts the session's round trips (this one and any after a reconnection).
    pub fn count_round_trips(&mut self, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) {
        if let Some(c) = &mut self.conn {
            c.count_round_trips(counter.clone());
        }
        self.round_trips = Some(counter);
    }

    /// The live session, reconnected (and the run lock re-taken) if it was lost.
    pub async fn conn(&mut self) -> Result<&mut Connection, Error> {
        if self.conn.is_none() {
            let mut conn = connect(&self.config)
                .await
                .map_err(|e| e.context("target"))?;
            if let Some(c) = &self.round_trips {
                conn.count_round_trips(c.clone());
            }
            if let Some(other) = state::take_run_lock(&mut conn).await? {
                return Err(Error::new(
                    ErrorKind::Db,
                    format!("the connection to the target was lost and, meanwhile, {other}"),
                ));
            }
            conn.execute("SET synchronous_commit = off").await?;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Io, "no target connection"))
    }

    /// Runs `f` on the session; when the connection breaks, reconnects and runs it again
    /// (MAX_RETRIES times). `f` must be safe to run again: each step the coordinator runs is
    /// one transaction with its run-state record, or only reads.
    pub async fn run<T>(
        &mut self,
        what: &str,
        mut f: impl AsyncFnMut(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            let res = match self.conn().await {
                Ok(c) => f(c).await,
                Err(e) => Err(e),
            };
            match res {
                Err(e) if e.is_retryable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    self.conn = None;
                    let wait = retry_wait(attempt);
                    (self.on_retry)(&format!(
                        "{what}: the target connection was lost ({e}); retry {attempt} of {MAX_RETRIES} in {} ms",
                        wait.as_millis()
                    ));
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    pub fn cancel_token(&self) -> Option<crate::conn::CancelToken> {
        self.conn.as_ref().map(|c| c.cancel_token())
    }

    pub async fn close(mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
    }
}

/// How many more sessions a server accepts from this role in this database, and an identity
/// of the server (to tell when source and target are one server sharing its slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headroom {
    pub free: i64,
    pub server: String,
}

pub async fn headroom(conn: &mut Connection) -> Result<Headroom, Error> {
    let rows = conn
        .query_text(
            "SELECT current_setting('max_connections')::int
                    - CASE WHEN r.rolsuper THEN 0 ELSE current_setting('superuser_reserved_connections')::int
                           + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) END
                    - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' OR backend_type IS NULL)::int,
                    CASE WHEN r.rolconnlimit >= 0 THEN r.rolconnlimit - (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid)::int END,
                    CASE WHEN d.datconnlimit >= 0 THEN d.datconnlimit - (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid)::int END,
                    coalesce(host(inet_server_addr()), 'local') || ':' || current_setting('port')
             FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()",
        )
        .await?;
    let row = rows.first().cloned().unwrap_or_default();
    let num = |i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<i64>().ok())
    };
    let free = [num(0), num(1), num(2)]
        .into_iter()
        .flatten()
        .min()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                "unexpected answer while counting connection slots",
            )
        })?;
    // The system identifier tells two servers apart where the role may read it.
    let id = conn
        .query_text("SELECT system_identifier::text FROM pg_control_system()")
        .await
        .ok()
        .and_then(|r| r.first().and_then(|r| r.first().cloned().flatten()));
    let server = id.unwrap_or_else(|| row.get(3).cloned().flatten().unwrap_or_default());
    Ok(Headroom { free, server })
}

/// Workers the servers can take: each needs one session on each (two on the same server).
pub fn cap_jobs(requested: usize, source: &Headroom, target: &Headroom) -> usize {
    let fit = if source.server == target.server {
        source.free.min(target.free) / 2
    } else {
        source.free.min(target.free)
    };
    requested.min(fit.max(1) as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(free: i64, server: &str) -> Headroom {
        Headroom {
            free,
            server: server.into(),
        }
    }

    #[test]
    fn jobs_fit_the_servers_slots() {
        assert_eq!(cap_jobs(150, &h(95, "a"), &h(40, "b")), 40);
        assert_eq!(
            cap_jobs(150, &h(95, "a"), &h(95, "a")),
            47,
            "one server: two sessions per worker"
        );
        assert_eq!(cap_jobs(4, &h(95, "a"), &h(40, "b")), 4);
        assert_eq!(
            cap_jobs(8, &h(0, "a"), &h(0, "a")),
            1,
            "at least one worker"
        );
    }
}
