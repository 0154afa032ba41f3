//! One column's kind from its name and its sampled values. Content alone decides when the
//! values are clearly of one kind (e-mail addresses, check-digit identifiers...); a name hint
//! decides when the values do not contradict it (or there are none); free text is personal
//! when some of it contains personal data. Only counts come out, never a value.

use super::{detect, names, Kind};

/// What a column's values are, for the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Text,
    /// An array of a text type: its elements are classified.
    TextArray,
    Integer,
    Numeric,
    Date,
    Inet,
    Json,
    Bytea,
    /// Composite, range, other user types: only the name is looked at.
    Other,
    /// Booleans, UUIDs, times, intervals, enums...: never personal by themselves.
    Never,
}

/// A personal path inside JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    pub key: String,
    pub kind: Kind,
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Class {
    pub kind: Option<Kind>,
    /// Why, in words and counts.
    pub evidence: String,
    /// The share of sampled values the deciding detector matched.
    pub matched: usize,
    pub sampled: usize,
    pub json: Vec<JsonPath>,
    /// Personal JSON keys no path can address (a `.` or `[` in the key): the whole
    /// document must be masked.
    pub json_unaddressable: Vec<String>,
}

/// Counts of each detector over a column's values.
#[derive(Debug, Default)]
struct Counts {
    n: usize,
    email: usize,
    phone: usize,
    national: usize,
    card: usize,
    iban: usize,
    ip: usize,
    postal: usize,
    street: usize,
    full: usize,
    first: usize,
    last: usize,
    city: usize,
    date: usize,
    free: usize,
    /// One capitalised word of letters.
    word: usize,
    /// Two to four capitalised words.
    words: usize,
    /// Mostly digits (with phone or id punctuation), 5 or more of them.
    digity: usize,
    /// A short code of letters and digits (3 to 20 characters, no spaces inside).
    code: usize,
    /// Letters and digits both, and a space (house numbers).
    mixed: usize,
    image_text: usize,
    long_text: usize,
}

fn capitalised(w: &str) -> bool {
    let mut cs = w.chars();
    cs.next().is_some_and(char::is_uppercase)
        && cs.all(|c| c.is_alphabetic() || c == '\'' || c == '-' || c == '.')
}

fn count(values: &[&str]) -> Counts {
    let mut c = Counts::default();
    for v in values {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        c.n += 1;
        let bump = |x: &mut usize, yes: bool| *x += usize::from(yes);
        bump(&mut c.email, detect::email(v));
        bump(&mut c.phone, detect::phone(v));
        bump(&mut c.national, detect::national_id(v));
        bump(&mut c.card, detect::card(v));
        bump(&mut c.iban, detect::iban(v));
        bump(&mut c.ip, detect::ip(v));
        bump(&mut c.postal, detect::postal_code(v));
        bump(&mut c.street, detect::street_address(v));
        bump(&mut c.full, detect::full_name(v));
        bump(&mut c.first, detect::first_name(v));
        bump(&mut c.last, detect::last_name(v));
        bump(&mut c.city, detect::city(v));
        bump(&mut c.date, detect::date(v).is_some());
        bump(&mut c.free, v.len() >= 12 && detect::contains_personal(v));
        let ws: Vec<&str> = v.split_whitespace().collect();
        bump(&mut c.word, ws.len() == 1 && capitalised(ws[0]));
        bump(
            &mut c.words,
            (2..=4).contains(&ws.len()) && ws.iter().all(|w| capitalised(w) || w.len() <= 3),
        );
        let digits = v.bytes().filter(u8::is_ascii_digit).count();
        bump(
            &mut c.digity,
            digits >= 5
                && v.chars()
                    .all(|ch| ch.is_ascii_digit() || " +-().".contains(ch)),
        );
        bump(
            &mut c.code,
            (3..=20).contains(&v.len())
                && v.chars()
                    .all(|ch| ch.is_alphanumeric() || " -".contains(ch))
                && ws.len() <= 3,
        );
        bump(
            &mut c.mixed,
            digits > 0 && v.chars().any(char::is_alphabetic) && ws.len() >= 2,
        );
        bump(
            &mut c.image_text,
            v.starts_with("data:image/") || v.starts_with("/9j/") || v.starts_with("iVBOR"),
        );
        bump(&mut c.long_text, v.len() >= 20 && ws.len() >= 4);
    }
    c
}

fn pct(m: usize, n: usize) -> String {
    format!("{}% of {n} sampled values", (m * 100 + n / 2) / n.max(1))
}

fn class(kind: Kind, by_name: Option<&str>, matched: usize, sampled: usize) -> Class {
    let evidence = match (by_name, sampled) {
        (Some(n), 0) => format!("name \"{n}\" suggests {}; no values to sample", kind.noun()),
        (Some(n), _) => format!(
            "name \"{n}\" suggests {}; {} match",
            kind.noun(),
            pct(matched, sampled)
        ),
        (None, _) => format!("{} are {}", pct(matched, sampled), kind.noun()),
    };
    Class {
        kind: Some(kind),
        evidence,
        matched,
        sampled,
        json: Vec::new(),
        json_unaddressable: Vec::new(),
    }
}

/// Date words that make a date column something other than a birth date.
const OTHER_DATES: &[&str] = &[
    "created",
    "updated",
    "modified",
    "deleted",
    "hire",
    "hired",
    "start",
    "started",
    "end",
    "ended",
    "order",
    "ordered",
    "ship",
    "shipped",
    "due",
    "paid",
    "expire",
    "expires",
    "expiry",
    "valid",
    "joined",
    "registered",
    "signup",
    "login",
    "visit",
    "admission",
    "discharge",
    "appointment",
    "event",
    "occurred",
    "at",
    "on",
    "time",
    "seen",
    "last",
    "first",
    "opened",
    "closed",
    "issued",
    "effective",
    "renewal",
    "required",
    "delivery",
    "delivered",
    "posted",
    "published",
    "release",
    "released",
    "scheduled",
    "payment",
    "invoice",
    "coverage",
    "contract",
    "since",
    "until",
    "from",
    "to",
];

/// Classifies one column; `person_table` says the table holds people (a name, e-mail or
/// phone column was found), which lets dates in an age range count as birth dates.
pub fn column(
    name: &str,
    category: Category,
    values: &[Option<String>],
    person_table: bool,
) -> Class {
    let hint = names::hint(name);
    let mut raw: Vec<&str> = Vec::new();
    for v in values.iter().flatten() {
        if category == Category::TextArray {
            raw.extend(v.split('\u{1f}'));
        } else {
            raw.push(v.as_str());
        }
    }
    match category {
        Category::Never => Class::default(),
        Category::Text | Category::TextArray => text(name, hint, &raw),
        Category::Integer | Category::Numeric => number(name, hint, &raw),
        Category::Date => date(name, hint, &raw, person_table),
        Category::Inet => {
            let n = raw.len();
            let hosts = raw.iter().filter(|v| detect::ip(v)).count();
            if n > 0 && hosts * 10 >= n * 6 {
                class(
                    Kind::IpAddress,
                    hint.filter(|h| h.0 == Kind::IpAddress).map(|_| name),
                    hosts,
                    n,
                )
            } else if n == 0 && hint.is_some_and(|h| h.0 == Kind::IpAddress) {
                class(Kind::IpAddress, Some(name), 0, 0)
            } else {
                Class::default()
            }
        }
        Category::Bytea => {
            let n = raw.len();
            let images = raw.iter().filter(|v| detect::image_magic(v)).count();
            match hint {
                _ if n > 0 && images * 2 >= n => class(Kind::Image, None, images, n),
                // Named as a picture: whatever its format (an OLE header, a vendor's own).
                Some((Kind::Image, _)) => class(Kind::Image, Some(name), images, n),
                Some((Kind::Secret, _)) => class(Kind::Secret, Some(name), n, n),
                _ => Class::default(),
            }
        }
        Category::Json => json(&raw),
        Category::Other => match hint {
            Some((k, false)) if !matches!(k, Kind::Image | Kind::Secret) => {
                class(k, Some(name), 0, 0)
            }
            _ => Class::default(),
        },
    }
}

fn text(name: &str, hint: Option<(Kind, bool)>, values: &[&str]) -> Class {
    let c = count(values);
    let n = c.n;
    let share = |m: usize, num: usize, den: usize| n > 0 && m * den >= n * num;
    // Values that are clearly of one kind decide alone (the strongest, in this order).
    let strong = [
        (Kind::Email, c.email),
        (Kind::PaymentCard, c.card),
        (Kind::Iban, c.iban),
        (Kind::NationalId, c.national),
        (Kind::IpAddress, c.ip),
        (Kind::Phone, c.phone),
        (Kind::PostalCode, c.postal),
    ];
    // The most matched; on a tie (`123-45-6789` is grouped like a phone) the name's kind,
    // else the first in the order above.
    let top = strong.iter().map(|(_, m)| *m).max().unwrap_or(0);
    let best = strong
        .iter()
        .filter(|(_, m)| share(*m, 6, 10) && *m == top)
        .min_by_key(|(k, _)| hint.is_none_or(|h| h.0 != *k));
    // What the name says, if the values do not contradict it.
    let accepted: Option<(Kind, usize)> = hint.and_then(|(kind, weak)| {
        let none = n == 0;
        match kind {
            _ if weak => {
                // A bare `name`: the values must be people's names.
                if share(c.full, 3, 10) {
                    Some((Kind::FullName, c.full))
                } else if share(c.first, 4, 10) && c.first >= c.last {
                    Some((Kind::FirstName, c.first))
                } else if share(c.last, 4, 10) {
                    Some((Kind::LastName, c.last))
                } else {
                    None
                }
            }
            Kind::Email => (none || share(c.email, 3, 10)).then_some((kind, c.email)),
            Kind::Phone => (none || share(c.phone, 3, 10) || share(c.digity, 5, 10))
                .then_some((kind, c.phone.max(c.digity))),
            Kind::NationalId => (none || share(c.national, 3, 10) || share(c.code, 6, 10))
                .then_some((kind, c.national.max(c.code))),
            Kind::PaymentCard => (none || share(c.card, 3, 10) || share(c.digity, 6, 10))
                .then_some((kind, c.card.max(c.digity))),
            Kind::Iban => (none || share(c.iban, 3, 10) || share(c.code, 6, 10))
                .then_some((kind, c.iban.max(c.code))),
            Kind::IpAddress => (none || share(c.ip, 3, 10)).then_some((kind, c.ip)),
            Kind::BirthDate => (none || share(c.date, 5, 10)).then_some((kind, c.date)),
            Kind::FirstName | Kind::LastName => {
                let lex = if kind == Kind::FirstName {
                    c.first
                } else {
                    c.last
                };
                // One to three capitalised words (`Garcia Lopez`, `Jean-Luc`).
                (none || share(lex, 2, 10) || share(c.word + c.words, 6, 10))
                    .then_some((kind, lex.max(c.word + c.words)))
            }
            Kind::FullName => (none || share(c.full, 2, 10) || share(c.words, 5, 10))
                .then_some((kind, c.full.max(c.words))),
            Kind::City => (none || share(c.city, 2, 10) || share(c.words + c.word, 6, 10))
                .then_some((kind, c.city.max(c.word + c.words))),
            Kind::StreetAddress => (none || share(c.street, 2, 10) || share(c.mixed, 5, 10))
                .then_some((kind, c.street.max(c.mixed))),
            Kind::PostalCode => (none || share(c.code, 6, 10)).then_some((kind, c.code)),
            Kind::Secret => Some((kind, n)),
            Kind::Image => share(c.image_text, 5, 10).then_some((kind, c.image_text)),
            Kind::FreeText | Kind::Json => None,
        }
    });
    // Values of one clear kind decide, unless the name says another kind the values fit too
    // (`ssn` holding `001-01-0001`, which is also grouped like a phone number): detectors
    // that formatted numbers can fool give way to the name.
    if let Some((kind, m)) = best {
        let ambiguous = matches!(kind, Kind::Phone | Kind::PostalCode | Kind::NationalId);
        match accepted {
            Some((k, am)) if k != *kind && ambiguous && hint.is_some_and(|h| !h.1) => {
                return class(k, Some(name), am, n);
            }
            _ => {
                let by_name = hint.filter(|h| h.0 == *kind).map(|_| name);
                return class(*kind, by_name, *m, n);
            }
        }
    }
    if let Some((k, m)) = accepted {
        return class(k, Some(name), m, n);
    }
    // People's names and addresses by content alone.
    let soft = [
        (Kind::FullName, c.full),
        (Kind::StreetAddress, c.street),
        (Kind::FirstName, c.first),
        (Kind::LastName, c.last),
    ];
    if let Some((kind, m)) = soft
        .iter()
        .filter(|(_, m)| share(*m, 5, 10))
        .max_by_key(|(_, m)| *m)
    {
        return class(*kind, None, *m, n);
    }
    if share(c.city, 6, 10) {
        return class(Kind::City, None, c.city, n);
    }
    // Single capitalised words, a good share of them known first names or surnames (lists
    // never hold every name).
    if share(c.word, 8, 10) && (share(c.first, 3, 10) || share(c.last, 3, 10)) {
        let (kind, m) = if c.first >= c.last {
            (Kind::FirstName, c.first)
        } else {
            (Kind::LastName, c.last)
        };
        return class(kind, None, m, n);
    }
    // Free text with personal data in some of it.
    if c.free >= 2 && c.free * 100 >= n && c.long_text * 2 >= n {
        let mut cl = class(Kind::FreeText, None, c.free, n);
        cl.evidence = format!(
            "free text: {} contain an e-mail address, phone number, identifier or person's name",
            pct(c.free, n)
        );
        return cl;
    }
    Class {
        sampled: n,
        ..Class::default()
    }
}

fn number(name: &str, hint: Option<(Kind, bool)>, values: &[&str]) -> Class {
    let n = values.len();
    let len_in = |lo: usize, hi: usize| {
        values
            .iter()
            .filter(|v| (lo..=hi).contains(&v.trim_start_matches('-').len()) && !v.contains('.'))
            .count()
    };
    let share = |m: usize| n == 0 || m * 10 >= n * 6;
    let Some((kind, false)) = hint else {
        return Class::default();
    };
    let m = match kind {
        Kind::Phone => len_in(7, 15),
        Kind::NationalId => len_in(6, 15),
        Kind::PaymentCard => values.iter().filter(|v| detect::card(v)).count(),
        Kind::PostalCode => len_in(3, 6),
        Kind::Iban => len_in(6, 30),
        _ => return Class::default(),
    };
    if share(m) {
        class(kind, Some(name), m, n)
    } else {
        Class::default()
    }
}

fn date(name: &str, hint: Option<(Kind, bool)>, values: &[&str], person_table: bool) -> Class {
    let now = 1970
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            / 31_556_952) as i32;
    let ages: Vec<i32> = values
        .iter()
        .filter_map(|v| v.get(..4).and_then(|y| y.parse::<i32>().ok()))
        .map(|y| now - y)
        .collect();
    let n = ages.len();
    if hint.is_some_and(|h| h.0 == Kind::BirthDate) {
        let plausible = ages.iter().filter(|a| (0..=125).contains(*a)).count();
        if n == 0 || plausible * 10 >= n * 8 {
            return class(Kind::BirthDate, Some(name), plausible, n);
        }
        return Class::default();
    }
    let words = names::words(name);
    if !person_table || n < 20 || words.iter().any(|w| OTHER_DATES.contains(&w.as_str())) {
        return Class::default();
    }
    let adult = ages.iter().filter(|a| (16..=100).contains(*a)).count();
    let mean = ages.iter().map(|&a| a as f64).sum::<f64>() / n as f64;
    let sd = (ages.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    if adult * 10 >= n * 9 && sd >= 8.0 {
        let mut cl = class(Kind::BirthDate, None, adult, n);
        cl.evidence = format!(
            "{} are dates 16 to 100 years ago, spread like ages (standard deviation {sd:.0} years), in a table about people",
            pct(adult, n)
        );
        return cl;
    }
    Class::default()
}

/// A JSON key that is a value (an e-mail address, a phone number, a person's name...).
fn key_is_data(k: &str) -> bool {
    detect::email(k)
        || detect::phone(k)
        || detect::national_id(k)
        || detect::card(k)
        || detect::iban(k)
        || detect::ip(k)
        || detect::full_name(k)
}

/// A key a path can address and a comment can show: a name of letters, digits, `_`, `-`
/// and spaces, not all digits.
fn nameable(k: &str) -> bool {
    (1..=64).contains(&k.chars().count())
        && k.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == ' ')
        && !k.chars().all(|c| c.is_ascii_digit())
}

/// JSON documents: each key's string and number values are classified like a column named
/// after the key; personal keys become `$..key` paths.
fn json(values: &[&str]) -> Class {
    use std::collections::BTreeMap;
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    fn walk(v: &serde_json::Value, key: Option<&str>, out: &mut BTreeMap<String, Vec<String>>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    // Every key is seen, also those above objects and arrays.
                    if !matches!(
                        x,
                        serde_json::Value::String(_) | serde_json::Value::Number(_)
                    ) && out.len() < 10_000
                    {
                        out.entry(k.clone()).or_default();
                    }
                    walk(x, Some(k), out);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    walk(x, key, out);
                }
            }
            serde_json::Value::String(s) => {
                if let Some(k) = key {
                    let e = out.entry(k.to_string()).or_default();
                    if e.len() < 500 {
                        e.push(s.chars().take(500).collect());
                    }
                }
            }
            serde_json::Value::Number(x) => {
                if let Some(k) = key {
                    let e = out.entry(k.to_string()).or_default();
                    if e.len() < 500 {
                        e.push(x.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let mut docs = 0;
    for v in values {
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(v) {
            docs += 1;
            walk(&doc, None, &mut by_key);
        }
    }
    let mut paths = Vec::new();
    let mut unaddressable = Vec::new();
    // Keys that are themselves data (`{"ada@example.com": ...}`): never named, and the
    // document is masked whole.
    let data_keys = by_key.keys().filter(|k| key_is_data(k)).count();
    if data_keys > 0 {
        unaddressable.push(format!(
            "{data_keys} key(s) that are themselves personal data"
        ));
    }
    for (key, vals) in by_key.iter().filter(|(k, _)| !key_is_data(k)) {
        let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
        let c = text(key, names::hint(key), &refs);
        let Some(kind) = c.kind.filter(|k| k.fits_json()) else {
            continue;
        };
        // Paths address keys by name: one with `.` or `[` (or unlike a name) cannot be
        // written, nor shown.
        if !nameable(key) {
            unaddressable.push(format!(
                "a key of {} characters ({})",
                key.chars().count(),
                kind.label()
            ));
            continue;
        }
        {
            paths.push(JsonPath {
                key: key.clone(),
                kind,
                evidence: format!("key \"{key}\": {}", c.evidence),
            });
        }
    }
    if paths.is_empty() && unaddressable.is_empty() {
        return Class {
            sampled: docs,
            ..Class::default()
        };
    }
    let mut keys: Vec<String> = paths
        .iter()
        .map(|p| format!("{} ({})", p.key, p.kind.label()))
        .collect();
    keys.extend(unaddressable.iter().cloned());
    let mut evidence = format!(
        "{} personal key(s) in {docs} sampled documents: {}",
        keys.len(),
        keys.join(", ")
    );
    if !unaddressable.is_empty() {
        evidence.push_str(&format!(
            "; {} cannot be reached by a JSON path, so the whole document is masked",
            unaddressable.join(", ")
        ));
    }
    Class {
        kind: Some(Kind::Json),
        evidence,
        matched: docs,
        sampled: docs,
        json: paths,
        json_unaddressable: unaddressable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn the_name_settles_values_two_detectors_read() {
        // Test data in SSN format, a third with group 00 (not a valid SSN): every one is also
        // grouped like a phone number.
        let ssns: Vec<String> = (1..=60)
            .map(|i| format!("{i:03}-{:02}-{i:04}", if i % 3 == 0 { 0 } else { i % 100 }))
            .collect();
        let refs: Vec<&str> = ssns.iter().map(String::as_str).collect();
        let v = values(&refs);
        assert_eq!(
            column("ssn", Category::Text, &v, false).kind,
            Some(Kind::NationalId)
        );
        // Without a name, grouped digits are phone numbers.
        assert_eq!(
            column("c9", Category::Text, &v, false).kind,
            Some(Kind::Phone)
        );
    }

    #[test]
    fn look_alikes_stay_kept() {
        let products = values(&["Wireless Mouse Pro", "USB-C Hub Mini", "Desk Lamp Max"]);
        assert_eq!(
            column("product_name", Category::Text, &products, false).kind,
            None
        );
        let hires: Vec<String> = (0..40).map(|i| format!("19{:02}-03-01", 60 + i)).collect();
        let refs: Vec<&str> = hires.iter().map(String::as_str).collect();
        assert_eq!(
            column("hire_date", Category::Date, &values(&refs), true).kind,
            None
        );
        // The same dates unnamed, in a table about people, are birth dates.
        assert_eq!(
            column("d1", Category::Date, &values(&refs), true).kind,
            Some(Kind::BirthDate)
        );
        assert_eq!(
            column("d1", Category::Date, &values(&refs), false).kind,
            None
        );
    }
}
