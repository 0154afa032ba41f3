//! `inet`, `cidr` and `macaddr`, with the server's text output (its own `inet_net_ntop`).

use std::fmt::{self, Write as _};

/// PostgreSQL's address families in the binary form.
pub const PGSQL_AF_INET: u8 = 2;
pub const PGSQL_AF_INET6: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inet {
    pub family: u8,
    pub bits: u8,
    pub is_cidr: bool,
    /// 4 or 16 bytes.
    pub addr: Vec<u8>,
}

impl fmt::Display for Inet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let max = if self.family == PGSQL_AF_INET {
            32
        } else {
            128
        };
        if self.family == PGSQL_AF_INET {
            for (i, b) in self.addr.iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                let _ = write!(out, "{b}");
            }
        } else {
            write_ipv6(&mut out, &self.addr);
        }
        if self.bits != max || self.is_cidr {
            let _ = write!(out, "/{}", self.bits);
        }
        f.write_str(&out)
    }
}

/// The longest run of zero words becomes `::` (the first of equal runs, only runs of two or
/// more), and some zero-prefixed addresses end in dotted IPv4, as PostgreSQL prints them.
fn write_ipv6(out: &mut String, addr: &[u8]) {
    let words: Vec<u16> = addr
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let (mut best, mut cur): ((i32, i32), (i32, i32)) = ((-1, 0), (-1, 0));
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur.0 == -1 {
                cur = (i as i32, 1);
            } else {
                cur.1 += 1;
            }
        } else if cur.0 != -1 {
            if best.0 == -1 || cur.1 > best.1 {
                best = cur;
            }
            cur.0 = -1;
        }
    }
    if cur.0 != -1 && (best.0 == -1 || cur.1 > best.1) {
        best = cur;
    }
    if best.0 != -1 && best.1 < 2 {
        best.0 = -1;
    }
    for (i, &w) in words.iter().enumerate() {
        let i = i as i32;
        if best.0 != -1 && i >= best.0 && i < best.0 + best.1 {
            if i == best.0 {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && best.0 == 0
            && (best.1 == 6
                || (best.1 == 7 && words[7] != 1)
                || (best.1 == 5 && words[5] == 0xffff))
        {
            let _ = write!(out, "{}.{}.{}.{}", addr[12], addr[13], addr[14], addr[15]);
            return;
        }
        let _ = write!(out, "{w:x}");
    }
    if best.0 != -1 && best.0 + best.1 == 8 {
        out.push(':');
    }
}

/// `macaddr` as `08:00:2b:01:02:03`.
pub fn fmt_macaddr(addr: &[u8; 6], out: &mut impl fmt::Write) -> fmt::Result {
    write!(
        out,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        addr[0], addr[1], addr[2], addr[3], addr[4], addr[5]
    )
}
