//! `~/.pgpass` (or `PGPASSFILE`): `hostname:port:database:username:password` lines, `*`
//! matching anything, `\` escaping `:` and `\`, first match wins. A file readable by group or
//! others is ignored with a warning, as libpq does.

use std::path::Path;

/// Looks up the password for a connection. `host` is the host name, or the socket directory
/// when `is_socket`; a socket connection also matches a line whose host is `localhost`.
pub fn lookup(
    file: &Path,
    host: &str,
    is_socket: bool,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() {
        tracing::warn!(
            "password file \"{}\" is not a plain file; ignoring it",
            file.display()
        );
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less; ignoring it",
            file.display()
        );
        return None;
    }
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("could not read password file \"{}\": {e}", file.display());
            return None;
        }
    };
    lookup_in(
        &String::from_utf8_lossy(&text),
        host,
        is_socket,
        port,
        dbname,
        user,
    )
}

pub fn lookup_in(
    text: &str,
    host: &str,
    is_socket: bool,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(fields) = split_line(line) else {
            continue;
        };
        let host_ok = matches(&fields[0], host) || (is_socket && matches(&fields[0], "localhost"));
        if host_ok
            && matches(&fields[1], &port)
            && matches(&fields[2], dbname)
            && matches(&fields[3], user)
        {
            return Some(fields[4].text.clone());
        }
    }
    None
}

struct Field {
    text: String,
    /// A lone unescaped `*`.
    wildcard: bool,
}

fn matches(field: &Field, value: &str) -> bool {
    field.wildcard || field.text == value
}

/// Splits at unescaped colons into exactly five fields (the password takes the rest of the
/// line, escapes removed); a line with fewer fields is skipped.
fn split_line(line: &str) -> Option<[Field; 5]> {
    let mut fields: Vec<Field> = Vec::with_capacity(5);
    let mut text = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped_any = true;
                if let Some(next) = chars.next() {
                    text.push(next);
                }
            }
            ':' if fields.len() < 4 => {
                fields.push(Field {
                    wildcard: text == "*" && !escaped_any,
                    text: std::mem::take(&mut text),
                });
                escaped_any = false;
            }
            c => text.push(c),
        }
    }
    if fields.len() != 4 {
        return None;
    }
    fields.push(Field {
        text,
        wildcard: false,
    });
    fields.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n\
        db.example.com:5432:app:alice:first\n\
        db.example.com:5432:app:alice:second\n\
        *:5433:*:bob:wild\\:card\n\
        weird\\:host:5432:*:*:esc\\\\aped\n\
        localhost:5432:*:carol:sock\n\
        short:line\n\
        \\*:5432:*:dave:literal-star\n";

    #[test]
    fn first_match_wins() {
        assert_eq!(
            lookup_in(FILE, "db.example.com", false, 5432, "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            lookup_in(FILE, "db.example.com", false, 5432, "other", "alice"),
            None
        );
    }

    #[test]
    fn wildcards_and_escapes() {
        assert_eq!(
            lookup_in(FILE, "anything", false, 5433, "x", "bob").as_deref(),
            Some("wild:card")
        );
        assert_eq!(lookup_in(FILE, "anything", false, 5432, "x", "bob"), None);
        assert_eq!(
            lookup_in(FILE, "weird:host", false, 5432, "x", "y").as_deref(),
            Some("esc\\aped")
        );
        // An escaped star is a literal star, not a wildcard.
        assert_eq!(lookup_in(FILE, "somehost", false, 5432, "x", "dave"), None);
        assert_eq!(
            lookup_in(FILE, "*", false, 5432, "x", "dave").as_deref(),
            Some("literal-star")
        );
    }

    #[test]
    fn sockets_match_localhost() {
        assert_eq!(
            lookup_in(FILE, "/var/run/postgresql", true, 5432, "x", "carol").as_deref(),
            Some("sock")
        );
        assert_eq!(
            lookup_in(FILE, "/var/run/postgresql", false, 5432, "x", "carol"),
            None
        );
    }

    #[test]
    fn permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("privaci-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "h:5432:d:u:pw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            lookup(&file, "h", false, 5432, "d", "u"),
            None,
            "world-readable file is ignored"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            lookup(&file, "h", false, 5432, "d", "u").as_deref(),
            Some("pw")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
