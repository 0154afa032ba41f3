//! Connection strings as libpq writes them: `postgres://` / `postgresql://` URIs and
//! `key=value` strings. Both produce the same list of (keyword, value) pairs; errors name the
//! keyword or the position that is wrong.

use super::ConfigError;

/// Parses either form, telling them apart the way libpq does (by the URI prefix).
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    if s.starts_with("postgresql://") || s.starts_with("postgres://") {
        parse_uri(s)
    } else {
        parse_key_value(s)
    }
}

/// `host=localhost port=5432 password='it''s' dbname = app`: values may be single-quoted;
/// a backslash escapes the next character inside or outside quotes.
pub fn parse_key_value(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    let mut pairs = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].1.is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let key_start = chars[i].0;
        while i < chars.len() && !chars[i].1.is_whitespace() && chars[i].1 != '=' {
            i += 1;
        }
        let key_end = chars.get(i).map_or(s.len(), |c| c.0);
        let key = &s[key_start..key_end];
        skip_ws(&mut i);
        if i >= chars.len() || chars[i].1 != '=' {
            return Err(ConfigError::new(format!(
                "missing \"=\" after \"{key}\" in connection string (position {})",
                key_start + 1
            )));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i].1 == '\'' {
            let quote_at = chars[i].0;
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ConfigError::new(format!(
                            "unterminated quoted string for \"{key}\" in connection string (quote at position {})",
                            quote_at + 1
                        )))
                    }
                    Some((_, '\'')) => {
                        i += 1;
                        break;
                    }
                    Some((_, '\\')) if i + 1 < chars.len() => {
                        value.push(chars[i + 1].1);
                        i += 2;
                    }
                    Some((_, c)) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].1.is_whitespace() {
                if chars[i].1 == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i].1);
                i += 1;
            }
        }
        pairs.push((key.to_string(), value));
    }
    Ok(pairs)
}

/// `postgresql://user:secret@host1:5432,[::1]:5433/dbname?sslmode=verify-full&application_name=x`
pub fn parse_uri(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let prefix_len = if s.starts_with("postgresql://") {
        13
    } else {
        11
    };
    let rest = &s[prefix_len..];
    let uri_err =
        |msg: String| ConfigError::new(format!("invalid URI \"{}\": {msg}", redact_uri(s)));
    let mut pairs = Vec::new();

    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut tail = &rest[authority_end..];

    let hostlist = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let (user, password) = match userinfo.find(':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            let offset = prefix_len;
            if !user.is_empty() {
                pairs.push((
                    "user".into(),
                    percent_decode(user, offset).map_err(uri_err)?,
                ));
            }
            if let Some(pw) = password {
                pairs.push((
                    "password".into(),
                    percent_decode(pw, offset + user.len() + 1).map_err(uri_err)?,
                ));
            }
            &authority[at + 1..]
        }
        None => authority,
    };
    let hostlist_offset = prefix_len + (authority.len() - hostlist.len());

    if !hostlist.is_empty() {
        let (mut hosts, mut ports) = (Vec::new(), Vec::new());
        let mut offset = hostlist_offset;
        for spec in hostlist.split(',') {
            let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
                let close = v6.find(']').ok_or_else(|| {
                    uri_err(format!(
                        "missing \"]\" in IPv6 host address at position {}",
                        offset + 1
                    ))
                })?;
                let after = &v6[close + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if after.is_empty() => None,
                    None => {
                        return Err(uri_err(format!(
                            "unexpected \"{after}\" after IPv6 host address at position {}",
                            offset + close + 3
                        )))
                    }
                };
                if close == 0 {
                    return Err(uri_err(format!(
                        "empty IPv6 host address at position {}",
                        offset + 1
                    )));
                }
                (v6[..close].to_string(), port)
            } else {
                match spec.rfind(':') {
                    Some(c) => (
                        percent_decode(&spec[..c], offset).map_err(uri_err)?,
                        Some(&spec[c + 1..]),
                    ),
                    None => (percent_decode(spec, offset).map_err(uri_err)?, None),
                }
            };
            hosts.push(host);
            ports.push(
                port.map(|p| percent_decode(p, offset))
                    .transpose()
                    .map_err(uri_err)?
                    .unwrap_or_default(),
            );
            offset += spec.len() + 1;
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            pairs.push(("host".into(), hosts.join(",")));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            pairs.push(("port".into(), ports.join(",")));
        }
    }

    if let Some(path) = tail.strip_prefix('/') {
        let end = path.find('?').unwrap_or(path.len());
        let db = percent_decode(&path[..end], s.len() - tail.len() + 1).map_err(uri_err)?;
        if !db.is_empty() {
            pairs.push(("dbname".into(), db));
        }
        tail = &path[end..];
    }

    if let Some(query) = tail.strip_prefix('?') {
        let mut offset = s.len() - query.len();
        for param in query.split('&') {
            if param.is_empty() {
                offset += 1;
                continue;
            }
            let eq = param.find('=').ok_or_else(|| {
                uri_err(format!(
                    "missing \"=\" in query parameter \"{param}\" at position {}",
                    offset + 1
                ))
            })?;
            let key = percent_decode(&param[..eq], offset).map_err(uri_err)?;
            let value = percent_decode(&param[eq + 1..], offset + eq + 1).map_err(uri_err)?;
            // libpq accepts the JDBC spelling ssl=true as sslmode=require.
            if key == "ssl" {
                if value != "true" {
                    return Err(uri_err(format!("invalid value \"{value}\" for query parameter \"ssl\" (only \"true\" is accepted)")));
                }
                pairs.push(("sslmode".into(), "require".into()));
            } else {
                pairs.push((key, value));
            }
            offset += param.len() + 1;
        }
    }
    Ok(pairs)
}

/// Decodes `%XX` escapes; `offset` places error positions in the whole string (1-based).
fn percent_decode(s: &str, offset: usize) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!(
                        "invalid percent-encoded token at position {}",
                        offset + i + 1
                    )
                })?;
            if byte == 0 {
                return Err(format!(
                    "forbidden value %00 in percent-encoded value at position {}",
                    offset + i + 1
                ));
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        format!(
            "percent-encoded value at position {} is not UTF-8",
            offset + 1
        )
    })
}

/// The URI with any password replaced, for error messages.
fn redact_uri(s: &str) -> String {
    let prefix_len = if s.starts_with("postgresql://") {
        13
    } else {
        11
    };
    let rest = &s[prefix_len..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let uri = match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(c) => format!("{}{}:***{}", &s[..prefix_len], &rest[..c], &rest[at..]),
            None => s.to_string(),
        },
        None => s.to_string(),
    };
    // A password may also come as a query parameter (`?password=...`), its name possibly
    // percent-encoded: every parameter whose decoded name is `password` loses its value.
    let Some(q) = uri.find('?') else {
        return uri;
    };
    let params: Vec<String> = uri[q + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if percent_decode(k, 0).is_ok_and(|k| k == "password") => {
                format!("{k}=***")
            }
            _ => p.to_string(),
        })
        .collect();
    format!("{}?{}", &uri[..q], params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn key_value_vectors() {
        assert_eq!(
            parse_key_value("host=localhost port=5432 dbname=mydb").unwrap(),
            pairs(&[("host", "localhost"), ("port", "5432"), ("dbname", "mydb")])
        );
        assert_eq!(
            parse_key_value("  user = bob   password='it\\'s a \\\\ secret' ").unwrap(),
            pairs(&[("user", "bob"), ("password", "it's a \\ secret")])
        );
        assert_eq!(
            parse_key_value("password=a\\ b").unwrap(),
            pairs(&[("password", "a b")])
        );
        assert_eq!(
            parse_key_value("password=''").unwrap(),
            pairs(&[("password", "")])
        );
        assert_eq!(
            parse_key_value("application_name='héllo wörld'").unwrap(),
            pairs(&[("application_name", "héllo wörld")])
        );
        assert_eq!(parse_key_value("").unwrap(), pairs(&[]));
    }

    #[test]
    fn key_value_errors_name_the_place() {
        let e = parse_key_value("host=a port").unwrap_err().to_string();
        assert!(
            e.contains("missing \"=\" after \"port\"") && e.contains("position 8"),
            "{e}"
        );
        let e = parse_key_value("host=a password='oops")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unterminated quoted string for \"password\"") && e.contains("position 17"),
            "{e}"
        );
    }

    #[test]
    fn uri_vectors() {
        assert_eq!(parse_uri("postgresql://").unwrap(), pairs(&[]));
        assert_eq!(
            parse_uri("postgres://localhost").unwrap(),
            pairs(&[("host", "localhost")])
        );
        assert_eq!(
            parse_uri("postgresql://localhost:5433/mydb").unwrap(),
            pairs(&[("host", "localhost"), ("port", "5433"), ("dbname", "mydb")])
        );
        assert_eq!(
            parse_uri("postgresql://us%40er:p%3Ass%2Fw@db.example.com/my%20db?sslmode=verify-full&application_name=a%26b").unwrap(),
            pairs(&[
                ("user", "us@er"),
                ("password", "p:ss/w"),
                ("host", "db.example.com"),
                ("dbname", "my db"),
                ("sslmode", "verify-full"),
                ("application_name", "a&b"),
            ])
        );
        assert_eq!(
            parse_uri("postgresql://[::1]:5433/db").unwrap(),
            pairs(&[("host", "::1"), ("port", "5433"), ("dbname", "db")])
        );
        assert_eq!(
            parse_uri("postgresql://[2001:db8::1234]/db").unwrap(),
            pairs(&[("host", "2001:db8::1234"), ("dbname", "db")])
        );
        assert_eq!(
            parse_uri("postgresql://h1:5432,[::1],h3:6000/db").unwrap(),
            pairs(&[
                ("host", "h1,::1,h3"),
                ("port", "5432,,6000"),
                ("dbname", "db")
            ])
        );
        assert_eq!(
            parse_uri("postgresql://%2Fvar%2Frun%2Fpostgresql/db").unwrap(),
            pairs(&[("host", "/var/run/postgresql"), ("dbname", "db")])
        );
        assert_eq!(
            parse_uri("postgresql:///db?host=/tmp&port=5433").unwrap(),
            pairs(&[("dbname", "db"), ("host", "/tmp"), ("port", "5433")])
        );
        assert_eq!(
            parse_uri("postgresql://u@h?ssl=true").unwrap(),
            pairs(&[("user", "u"), ("host", "h"), ("sslmode", "require")])
        );
        assert_eq!(
            parse_uri("postgresql://:pw@h").unwrap(),
            pairs(&[("password", "pw"), ("host", "h")])
        );
    }

    #[test]
    fn uri_errors_name_the_place_and_hide_the_password() {
        let e = parse_uri("postgresql://u:secret@h/db?sslmode")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing \"=\" in query parameter \"sslmode\""),
            "{e}"
        );
        assert!(!e.contains("secret") && e.contains("u:***@h"), "{e}");
        for uri in [
            "postgresql://h/db?password=QPSECRET1&sslmode",
            "postgresql://h/db?sslmode&password=QPSECRET1",
            "postgresql://h/db?pass%77ord=QPSECRET1&x",
            "postgresql://u:QPSECRET2@h/db?password=QPSECRET1&sslmode=%zz",
        ] {
            let e = parse_uri(uri).unwrap_err().to_string();
            assert!(!e.contains("QPSECRET"), "{e}");
            assert!(e.contains("=***"), "{e}");
        }
        let e = parse_uri("postgresql://h/d%zzb").unwrap_err().to_string();
        assert!(
            e.contains("invalid percent-encoded token at position 17"),
            "{e}"
        );
        let e = parse_uri("postgresql://[::1/db").unwrap_err().to_string();
        assert!(e.contains("missing \"]\""), "{e}");
        assert!(parse_uri("postgresql://[::1]x/db").is_err());
        assert!(parse_uri("postgresql://h/db?a=%00").is_err());
        assert!(parse_uri("postgresql://h/db?ssl=false").is_err());
    }
}
