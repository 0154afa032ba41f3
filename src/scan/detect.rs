//! Content detectors: does one sampled value (as text) look like an e-mail address, a phone
//! number, a national identifier, a payment card, an IBAN, an IP address, a date, a street
//! address, a postal code or a person's name; does free text contain any of them. Check
//! digits are verified where the format has them (Luhn, mod 97, mod 23, mod 11), so numbers
//! that merely have the right length do not count.

use super::lexicon;

/// A value's e-mail shape: `local@domain.tld`, no spaces, a letter TLD of 2+ characters.
pub fn email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.len() < 4 || s.len() > 254 {
        return false;
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_alphanumeric() || "._%+-'!#$&*=?^`{|}~".contains(c));
    let Some((body, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let domain_ok = !body.is_empty()
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        && !domain.contains("..");
    local_ok && domain_ok && tld.len() >= 2 && tld.chars().all(char::is_alphabetic)
}

fn digits_of(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn checksum holds.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = d as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// `2024-01-15`, `15.01.2024`, `01/15/2024`: a calendar date, and its year.
pub fn date(s: &str) -> Option<i32> {
    let s = s.trim();
    let s = s.split(['T', ' ']).next().unwrap_or(s);
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    if parts.len() != 3
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<i32> = parts.iter().map(|p| p.parse().unwrap_or(-1)).collect();
    let (y, m, d) = if parts[0].len() == 4 {
        (n[0], n[1], n[2])
    } else if parts[2].len() == 4 {
        // Day first or month first: either reads as a date.
        (n[2], n[1].min(n[0]), n[1].max(n[0]))
    } else {
        return None;
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d) && (1800..=2200).contains(&y)).then_some(y)
}

/// A phone number: 7 to 15 digits, only phone punctuation around them, and either a leading
/// `+`/`00`, a trunk `0`, or digits grouped by separators. Dates, times, amounts and ISBNs
/// are not phones.
pub fn phone(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c))
    {
        return false;
    }
    // An extension (`x123`, `ext. 12`) is cut off by the caller's token split; here none.
    let digits = digits_of(s);
    if !(7..=15).contains(&digits.len()) || date(s).is_some() || ip(s) {
        return false;
    }
    if s[1..].contains('+') || s.matches('(').count() > 1 {
        return false;
    }
    let groups: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // ISBN-13 and decimal amounts.
    if digits.len() == 13 && (s.starts_with("978") || s.starts_with("979")) {
        return false;
    }
    if s.contains('.') && groups.len() == 2 && groups[1].len() <= 2 {
        return false;
    }
    let international = s.starts_with('+') || s.starts_with("00");
    let grouped = groups.len() >= 2 && groups.len() <= 5 && groups.iter().all(|g| g.len() <= 5);
    let trunk = s.starts_with('0') && digits.len() >= 9;
    international || grouped || trunk
}

/// US SSN `123-45-6789` (valid area, group and serial), Canadian SIN `123 456 782` (Luhn),
/// UK NINO `AB 12 34 56 C`, Spanish DNI `12345678Z` / NIE `X1234567L` (mod 23 letter), Dutch
/// BSN (nine digits, eleven-test), Italian codice fiscale, French NIR (key mod 97).
pub fn national_id(s: &str) -> bool {
    let s = s.trim();
    let compact: String = s.chars().filter(|c| !" -.".contains(*c)).collect();
    let upper = compact.to_ascii_uppercase();
    let b = upper.as_bytes();
    // US SSN, written with dashes.
    if s.len() == 11
        && s.as_bytes()[3] == b'-'
        && s.as_bytes()[6] == b'-'
        && compact.len() == 9
        && compact.bytes().all(|c| c.is_ascii_digit())
    {
        let area: u32 = compact[0..3].parse().unwrap_or(0);
        let group: u32 = compact[3..5].parse().unwrap_or(0);
        let serial: u32 = compact[5..9].parse().unwrap_or(0);
        return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    }
    // Nine digits written in groups of three: Canadian SIN (Luhn).
    if compact.len() == 9
        && compact.bytes().all(|c| c.is_ascii_digit())
        && s.len() == 11
        && luhn(&digits_of(&compact))
    {
        return true;
    }
    // Nine bare digits: Dutch BSN, eleven-test.
    if s.len() == 9 && s.bytes().all(|c| c.is_ascii_digit()) {
        let d = digits_of(s);
        let sum: i32 = (0..8).map(|i| (9 - i as i32) * d[i] as i32).sum::<i32>() - d[8] as i32;
        return sum % 11 == 0 && d[0] != 0;
    }
    // UK NINO.
    if b.len() == 9
        && b[0].is_ascii_alphabetic()
        && b[1].is_ascii_alphabetic()
        && b[2..8].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&b[8])
        && !b"DFIQUV".contains(&b[0])
        && !b"DFIOQUV".contains(&b[1])
    {
        return true;
    }
    // Spanish DNI / NIE.
    const DNI: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    if b.len() == 9 && b[8].is_ascii_alphabetic() {
        let number = match b[0] {
            b'X' | b'Y' | b'Z' => {
                let lead = (b[0] - b'X') as u32;
                std::str::from_utf8(&b[1..8])
                    .ok()
                    .and_then(|n| n.parse::<u32>().ok())
                    .map(|n| lead * 10_000_000 + n)
            }
            _ => std::str::from_utf8(&b[0..8])
                .ok()
                .and_then(|n| n.parse::<u32>().ok()),
        };
        if let Some(n) = number {
            if b[..8]
                .iter()
                .skip(usize::from(b[0].is_ascii_alphabetic()))
                .all(u8::is_ascii_digit)
            {
                return DNI[(n % 23) as usize] == b[8];
            }
        }
    }
    // Italian codice fiscale: 6 letters, 2 digits, letter, 2 digits, letter, 3 digits, letter.
    if b.len() == 16 {
        let shape = b"LLLLLLDDLDDLDDDL";
        if b.iter().zip(shape).all(|(c, k)| match k {
            b'L' => c.is_ascii_alphabetic(),
            _ => c.is_ascii_digit(),
        }) {
            return true;
        }
    }
    // French NIR: 13 digits and a two-digit key = 97 - (number mod 97).
    if compact.len() == 15
        && compact.bytes().all(|c| c.is_ascii_digit())
        && (b[0] == b'1' || b[0] == b'2')
    {
        let n: u64 = compact[..13].parse().unwrap_or(0);
        let key: u64 = compact[13..].parse().unwrap_or(100);
        return 97 - n % 97 == key;
    }
    false
}

/// A payment card number: 13 to 19 digits (spaces or dashes allowed), a known issuer
/// prefix, and a valid Luhn check digit.
pub fn card(s: &str) -> bool {
    let s = s.trim();
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return false;
    }
    let d = digits_of(s);
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let prefix = |n: usize| d[..n].iter().fold(0u32, |a, &x| a * 10 + x as u32);
    let issuer = d[0] == 4
        || (51..=55).contains(&prefix(2))
        || (2221..=2720).contains(&prefix(4))
        || prefix(2) == 34
        || prefix(2) == 37
        || prefix(4) == 6011
        || prefix(2) == 65
        || prefix(2) == 35
        || prefix(2) == 36
        || prefix(2) == 62;
    issuer && luhn(&d)
}

/// An IBAN: country letters, two check digits, up to 30 letters and digits (spaces allowed),
/// and the mod-97 check (ISO 13616) holding.
pub fn iban(s: &str) -> bool {
    let compact: String = s
        .trim()
        .chars()
        .filter(|c| *c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    let b = compact.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[0].is_ascii_alphabetic()
        || !b[1].is_ascii_alphabetic()
        || !b[2].is_ascii_digit()
        || !b[3].is_ascii_digit()
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut rem = 0u32;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            (c - b'0') as u32
        } else {
            (c - b'A') as u32 + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// An IPv4 or IPv6 host address (a `/32` or `/128` prefix allowed).
pub fn ip(s: &str) -> bool {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => {
            prefix.is_none_or(|p| p == "32") && addr.matches('.').count() == 3
        }
        Ok(std::net::IpAddr::V6(_)) => prefix.is_none_or(|p| p == "128"),
        Err(_) => false,
    }
}

/// A street address: a house number next to a street word (`12 Oak Street`, `Hauptstraße
/// 5`, `Calle Mayor 3`, `4 rue de la Paix`).
pub fn street_address(s: &str) -> bool {
    let s = s.trim();
    if s.len() < 6 || s.len() > 120 {
        return false;
    }
    let words: Vec<String> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('.').to_lowercase())
        .collect();
    let has_number = words.iter().any(|w| {
        w.chars().next().is_some_and(|c| c.is_ascii_digit())
            && w.chars().filter(char::is_ascii_digit).count() <= 6
    });
    let has_street = words.iter().any(|w| {
        lexicon::street_words().contains(w.as_str())
            || lexicon::STREET_ENDINGS
                .iter()
                .any(|e| w.len() > e.len() + 2 && w.ends_with(e))
    });
    has_number && has_street && words.len() >= 2
}

/// A postal code with letters (UK `SW1A 1AA`, Canada `K1A 0B1`, Netherlands `1012 AB`) or a
/// US ZIP+4; plain five digits are left to the column's name.
pub fn postal_code(s: &str) -> bool {
    let s = s.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    let is = |pat: &[u8]| {
        b.len() == pat.len()
            && b.iter().zip(pat).all(|(c, p)| match p {
                b'A' => c.is_ascii_alphabetic(),
                b'9' => c.is_ascii_digit(),
                other => c == other,
            })
    };
    is(b"A9A 9A9")
        || is(b"99999-9999")
        || is(b"9999 AA")
        || is(b"A9 9AA")
        || is(b"A99 9AA")
        || is(b"AA9 9AA")
        || is(b"AA99 9AA")
        || is(b"A9A 9AA")
        || is(b"AA9A 9AA")
}

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphabetic() && c != '\'' && c != '-')
                .to_lowercase()
        })
}

/// The whole value is a first name from the lexicon.
pub fn first_name(s: &str) -> bool {
    let w = s.trim().to_lowercase();
    lexicon::first_names().contains(w.as_str())
}

/// The whole value is a surname from the lexicon.
pub fn last_name(s: &str) -> bool {
    let w = s.trim().to_lowercase();
    lexicon::last_names().contains(w.as_str())
}

/// Two to four capitalised words, the first a first name or the last a surname (`Ada
/// Lovelace`, `Lovelace, Ada`, `Dr. Jane van Dyke`).
pub fn full_name(s: &str) -> bool {
    let s = s.trim();
    if s.len() > 80 || s.chars().any(|c| c.is_ascii_digit() || c == '@') {
        return false;
    }
    let ws: Vec<String> = words(s)
        .filter(|w| !lexicon::TITLES.contains(&w.as_str()))
        .filter(|w| !w.is_empty())
        .collect();
    if !(2..=4).contains(&ws.len()) {
        return false;
    }
    let firsts = lexicon::first_names();
    let lasts = lexicon::last_names();
    let (a, z) = (&ws[0], &ws[ws.len() - 1]);
    if s.contains(',') {
        // `Last, First`.
        return lasts.contains(a.as_str()) || firsts.contains(z.as_str());
    }
    firsts.contains(a.as_str()) || lasts.contains(z.as_str())
}

/// A city from the lexicon.
pub fn city(s: &str) -> bool {
    lexicon::cities().contains(s.trim().to_lowercase().as_str())
}

/// Free text that contains an e-mail address, a phone number, a national id, a card number,
/// an IBAN, or a first name followed by a surname.
pub fn contains_personal(s: &str) -> bool {
    if s.len() < 12 || !s.contains(' ') {
        return false;
    }
    for token in s.split(|c: char| c.is_whitespace() || "<>\"'(),;".contains(c)) {
        let t = token.trim_matches(|c: char| ".:!?".contains(c));
        if t.contains('@') && email(t) {
            return true;
        }
        if t.len() >= 9 && (national_id(t) || iban(t) || card(t)) {
            return true;
        }
    }
    // Runs of phone characters, which span several tokens.
    let mut run = String::new();
    for c in s.chars().chain(std::iter::once('x')) {
        if c.is_ascii_digit() || " +-()./".contains(c) {
            run.push(c);
        } else {
            let r = run.trim_matches(|c: char| !c.is_ascii_digit() && c != '+' && c != '(');
            if r.bytes().filter(u8::is_ascii_digit).count() >= 7 && (phone(r) || card(r)) {
                return true;
            }
            run.clear();
        }
    }
    let firsts = lexicon::first_names();
    let lasts = lexicon::last_names();
    let raw: Vec<&str> = s.split_whitespace().collect();
    raw.windows(2).any(|w| {
        let capital = |x: &str| x.chars().next().is_some_and(char::is_uppercase);
        let clean = |x: &str| x.trim_matches(|c: char| !c.is_alphabetic()).to_lowercase();
        capital(w[0])
            && capital(w[1])
            && firsts.contains(clean(w[0]).as_str())
            && lasts.contains(clean(w[1]).as_str())
    })
}

/// An image file's first bytes (hex): JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/AVIF.
pub fn image_magic(hex: &str) -> bool {
    let h = hex.trim_start_matches("\\x").to_ascii_lowercase();
    h.starts_with("ffd8ff")
        || h.starts_with("89504e470d0a1a0a")
        || h.starts_with("47494638")
        || (h.starts_with("52494646") && h.get(16..24) == Some("57454250"))
        || h.starts_with("424d")
        || h.starts_with("49492a00")
        || h.starts_with("4d4d002a")
        || h.get(8..16) == Some("66747970")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(email("ada.lovelace+x@example.co.uk"));
        assert!(!email("not an email@example.com"));
        assert!(!email("user@localhost"));
        assert!(!email("@example.com"));
    }

    #[test]
    fn phones_and_look_alikes() {
        for p in [
            "+1 (555) 123-4567",
            "030 1234567",
            "+44 20 7946 0958",
            "555-867-5309",
            "0612345678",
            "(02) 9876 5432",
        ] {
            assert!(phone(p), "{p}");
        }
        for n in [
            "2024-01-15",
            "12345678",
            "978-3-16-148410-0",
            "1234.56",
            "10248",
            "12:30:45",
        ] {
            assert!(!phone(n), "{n}");
        }
    }

    #[test]
    fn identifiers_with_check_digits() {
        assert!(national_id("123-45-6789"));
        assert!(!national_id("000-45-6789"));
        assert!(national_id("046 454 286")); // SIN, Luhn
        assert!(national_id("12345678Z")); // DNI
        assert!(!national_id("12345678A"));
        assert!(national_id("X1234567L")); // NIE
        assert!(national_id("AB123456C")); // NINO
        assert!(national_id("111222333")); // BSN eleven-test
        assert!(national_id("RSSMRA85T10A562S"));
        assert!(card("4111 1111 1111 1111"));
        assert!(card("5500-0000-0000-0004"));
        assert!(!card("4111 1111 1111 1112"));
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(!iban("GB82WEST12345698765433"));
        assert!(ip("192.168.0.17"));
        assert!(ip("2001:db8::1"));
        assert!(!ip("1.2.3"));
        assert!(!ip("10.0.0.0/8"));
    }

    #[test]
    fn addresses_names_and_text() {
        assert!(street_address("12 Oak Street"));
        assert!(street_address("Hauptstraße 5"));
        assert!(street_address("4 rue de la Paix"));
        assert!(!street_address("Oak Street"));
        assert!(!street_address("Model 2000 deluxe"));
        assert!(postal_code("SW1A 1AA"));
        assert!(postal_code("K1A 0B1"));
        assert!(!postal_code("12345"));
        assert!(full_name("Maria Garcia"));
        assert!(full_name("Garcia, Maria"));
        assert!(!full_name("Senior Engineer"));
        assert!(contains_personal(
            "Please call me at +1 555 123 4567 tomorrow"
        ));
        assert!(contains_personal(
            "Forwarded to jane.doe@example.org for review"
        ));
        assert!(!contains_personal("Shipped in 2 boxes, 12 kg, order 10248"));
        assert!(image_magic("\\x89504e470d0a1a0a0000000d"));
        assert!(image_magic("ffd8ffe000104a46"));
        assert!(!image_magic("\\x00010203"));
    }
}
