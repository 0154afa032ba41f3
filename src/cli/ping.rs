//! `privaci ping`: the connectivity check. It exercises the whole connection path (conninfo,
//! TLS, authentication, a simple query) and reports what was negotiated.

use crate::conn::{self, Connection};
use crate::conninfo::Config;
use crate::tls::Verification;
use crate::Error;

use super::exit;

pub async fn run(conninfo: &str) -> i32 {
    match ping(conninfo).await {
        Ok(report) => {
            print!("{report}");
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("privaci: {e}");
            exit::FAILED
        }
    }
}

/// Connects, asks the server who we are, and renders the report.
pub async fn ping(conninfo: &str) -> Result<String, Error> {
    let cfg = Config::parse(conninfo)?;
    let mut conn = conn::connect(&cfg).await?;
    let report = report(&mut conn).await?;
    conn.close().await?;
    Ok(report)
}

async fn report(conn: &mut Connection) -> Result<String, Error> {
    let rows = conn
        .query_text("SELECT current_user, current_database(), current_setting('server_version')")
        .await?;
    let row = rows.first().ok_or_else(|| {
        Error::new(
            crate::ErrorKind::Protocol,
            "the server returned no row for the identity query",
        )
    })?;
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let info = conn.info();
    let tls = match &info.tls {
        Some(t) => format!(
            "{}, {} ({})",
            t.version,
            t.cipher,
            match t.verification {
                Verification::Full => "certificate chain and host name verified",
                Verification::Chain => "certificate chain verified, host name not checked",
                Verification::None => "certificate not verified",
            }
        ),
        None => "no TLS".to_string(),
    };
    Ok(format!(
        "connected to {}\n  server version:  {}\n  user:            {}\n  database:        {}\n  TLS:             {}\n  authentication:  {}\n",
        info.target,
        text(2),
        text(0),
        text(1),
        tls,
        info.auth_method
    ))
}
