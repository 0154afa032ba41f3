//! Dates, times, timestamps and intervals: PostgreSQL's binary forms (days or microseconds
//! since 2000-01-01) and its text output with DateStyle ISO, IntervalStyle postgres, and
//! timestamptz shown in UTC.

use std::fmt::{self, Write as _};

pub const USECS_PER_DAY: i64 = 86_400_000_000;
const USECS_PER_HOUR: i64 = 3_600_000_000;
const USECS_PER_MINUTE: i64 = 60_000_000;
const USECS_PER_SEC: i64 = 1_000_000;
/// Julian day of 2000-01-01, PostgreSQL's epoch.
pub const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;

/// The finite dates PostgreSQL accepts, as days from 2000-01-01: from 4714-11-24 BC (Julian
/// day 0) to 5874897-12-31 (the day before Julian day 2147483494), as `date.h` defines them.
pub const DATE_MIN: i64 = -POSTGRES_EPOCH_JDATE;
pub const DATE_MAX: i64 = 2_147_483_494 - POSTGRES_EPOCH_JDATE - 1;

/// The finite timestamps PostgreSQL accepts, in microseconds from 2000-01-01: from
/// 4714-11-24 00:00 BC to the last microsecond before 294277-01-01 (`MIN_TIMESTAMP`,
/// `END_TIMESTAMP` in `timestamp.h`).
pub const TIMESTAMP_MIN: i64 = -211_813_488_000_000_000;
pub const TIMESTAMP_MAX: i64 = 9_223_371_331_200_000_000 - 1;

/// PostgreSQL's `j2date`: Julian day to (year, month, day); year 0 is 1 BC.
pub fn j2date(jd: i64) -> (i64, u32, u32) {
    let mut julian = (jd + 32044) as u64;
    let mut quad = julian / 146_097;
    let extra = (julian - quad * 146_097) * 4 + 3;
    julian += 60 + quad * 3 + extra / 146_097;
    quad = julian / 1461;
    julian -= quad * 1461;
    let mut y = julian * 4 / 1461;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y += quad * 4;
    let year = y as i64 - 4800;
    let quad = julian * 2141 / 65536;
    let day = julian - 7834 * quad / 256;
    let month = (quad + 10) % 12 + 1;
    (year, month as u32, day as u32)
}

/// PostgreSQL's `date2j`.
pub fn date2j(year: i64, month: u32, day: u32) -> i64 {
    let (mut y, mut m) = (year, month as i64);
    if m > 2 {
        m += 1;
        y += 4800;
    } else {
        m += 13;
        y += 4799;
    }
    let century = y / 100;
    let mut julian = y * 365 - 32167;
    julian += y / 4 - century + century / 4;
    julian += 7834 * m / 256 + day as i64;
    julian
}

/// Year for display: 1 BC is year 0 internally.
fn write_date(out: &mut impl fmt::Write, year: i64, month: u32, day: u32) -> fmt::Result {
    let shown = if year <= 0 { 1 - year } else { year };
    write!(out, "{shown:04}-{month:02}-{day:02}")
}

/// Seconds with up to six fraction digits, trailing zeros dropped.
fn write_seconds(out: &mut impl fmt::Write, sec: i64, fsec: i64) -> fmt::Result {
    write!(out, "{:02}", sec.abs())?;
    if fsec != 0 {
        let mut frac = format!("{:06}", fsec.abs());
        while frac.ends_with('0') {
            frac.pop();
        }
        write!(out, ".{frac}")?;
    }
    Ok(())
}

fn write_time(out: &mut impl fmt::Write, micros: i64) -> fmt::Result {
    let hour = micros / USECS_PER_HOUR;
    let rest = micros - hour * USECS_PER_HOUR;
    let min = rest / USECS_PER_MINUTE;
    let rest = rest - min * USECS_PER_MINUTE;
    let sec = rest / USECS_PER_SEC;
    write!(out, "{hour:02}:{min:02}:")?;
    write_seconds(out, sec, rest - sec * USECS_PER_SEC)
}

/// A `date`: days since 2000-01-01, with ±infinity at the ends of i32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub i32);

impl Date {
    pub const INFINITY: Date = Date(i32::MAX);
    pub const NEG_INFINITY: Date = Date(i32::MIN);

    pub fn is_finite(self) -> bool {
        self != Date::INFINITY && self != Date::NEG_INFINITY
    }

    pub fn ymd(self) -> (i64, u32, u32) {
        j2date(self.0 as i64 + POSTGRES_EPOCH_JDATE)
    }

    pub fn from_ymd(year: i64, month: u32, day: u32) -> Date {
        Date((date2j(year, month, day) - POSTGRES_EPOCH_JDATE) as i32)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Date::INFINITY => f.write_str("infinity"),
            Date::NEG_INFINITY => f.write_str("-infinity"),
            d => {
                let (y, m, day) = d.ymd();
                write_date(f, y, m, day)?;
                if y <= 0 {
                    f.write_str(" BC")?;
                }
                Ok(())
            }
        }
    }
}

/// A `timestamp` or `timestamptz`: microseconds since 2000-01-01 00:00 (UTC for timestamptz).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const INFINITY: Timestamp = Timestamp(i64::MAX);
    pub const NEG_INFINITY: Timestamp = Timestamp(i64::MIN);

    pub fn is_finite(self) -> bool {
        self != Timestamp::INFINITY && self != Timestamp::NEG_INFINITY
    }

    /// Writes the server's text form; `utc_offset` adds `+00` as for timestamptz in UTC.
    pub fn write(&self, out: &mut impl fmt::Write, utc_offset: bool) -> fmt::Result {
        match *self {
            Timestamp::INFINITY => return out.write_str("infinity"),
            Timestamp::NEG_INFINITY => return out.write_str("-infinity"),
            _ => {}
        }
        let days = self.0.div_euclid(USECS_PER_DAY);
        let time = self.0.rem_euclid(USECS_PER_DAY);
        let (y, m, d) = j2date(days + POSTGRES_EPOCH_JDATE);
        write_date(out, y, m, d)?;
        out.write_char(' ')?;
        write_time(out, time)?;
        if utc_offset {
            out.write_str("+00")?;
        }
        if y <= 0 {
            out.write_str(" BC")?;
        }
        Ok(())
    }
}

/// `time`: microseconds since midnight.
pub fn fmt_time(micros: i64, out: &mut impl fmt::Write) -> fmt::Result {
    write_time(out, micros)
}

/// `timetz`: microseconds since midnight and the zone in seconds *west* of UTC.
pub fn fmt_timetz(micros: i64, zone_west: i32, out: &mut impl fmt::Write) -> fmt::Result {
    write_time(out, micros)?;
    let total = zone_west.unsigned_abs();
    let (hour, min, sec) = (total / 3600, (total / 60) % 60, total % 60);
    out.write_char(if zone_west <= 0 { '+' } else { '-' })?;
    if sec != 0 {
        write!(out, "{hour:02}:{min:02}:{sec:02}")
    } else if min != 0 {
        write!(out, "{hour:02}:{min:02}")
    } else {
        write!(out, "{hour:02}")
    }
}

/// `interval`: months, days and microseconds, kept apart as PostgreSQL keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl fmt::Display for Interval {
    /// IntervalStyle `postgres`, as `EncodeInterval` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, mon) = (self.months / 12, self.months % 12);
        let mut is_zero = true;
        let mut is_before = false;
        let mut out = String::new();
        for (value, unit) in [
            (year as i64, "year"),
            (mon as i64, "mon"),
            (self.days as i64, "day"),
        ] {
            if value == 0 {
                continue;
            }
            let _ = write!(
                out,
                "{}{}{value} {unit}{}",
                if is_zero { "" } else { " " },
                if is_before && value > 0 { "+" } else { "" },
                if value != 1 { "s" } else { "" }
            );
            is_before = value < 0;
            is_zero = false;
        }
        let hour = self.micros / USECS_PER_HOUR;
        let rest = self.micros - hour * USECS_PER_HOUR;
        let min = rest / USECS_PER_MINUTE;
        let rest = rest - min * USECS_PER_MINUTE;
        let sec = rest / USECS_PER_SEC;
        let fsec = rest - sec * USECS_PER_SEC;
        if is_zero || hour != 0 || min != 0 || sec != 0 || fsec != 0 {
            let minus = hour < 0 || min < 0 || sec < 0 || fsec < 0;
            let _ = write!(
                out,
                "{}{}{:02}:{:02}:",
                if is_zero { "" } else { " " },
                if minus {
                    "-"
                } else if is_before {
                    "+"
                } else {
                    ""
                },
                hour.abs(),
                min.abs()
            );
            let _ = write_seconds(&mut out, sec, fsec);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn julian_round_trip() {
        for (y, m, d) in [
            (2000, 1, 1),
            (1970, 1, 1),
            (2024, 2, 29),
            (-43, 3, 15),
            (0, 12, 31),
            (1, 1, 1),
            (294276, 12, 31),
            (-4713, 11, 24),
        ] {
            assert_eq!(j2date(date2j(y, m, d)), (y, m, d));
        }
        assert_eq!(Date(0).to_string(), "2000-01-01");
        assert_eq!(Date::from_ymd(-43, 3, 15).to_string(), "0044-03-15 BC");
    }

    #[test]
    fn interval_text() {
        let iv = |months, days, micros| {
            Interval {
                months,
                days,
                micros,
            }
            .to_string()
        };
        assert_eq!(iv(0, 0, 0), "00:00:00");
        assert_eq!(
            iv(14, 3, 4 * USECS_PER_HOUR + 5 * USECS_PER_MINUTE + 6_789_000),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(iv(0, -1, 2 * USECS_PER_HOUR), "-1 days +02:00:00");
        assert_eq!(iv(-1, 0, -1), "-1 mons -00:00:00.000001");
        assert_eq!(iv(1, 1, 0), "1 mon 1 day");
    }
}
