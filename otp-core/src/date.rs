//! Dates and times (SPEC "Dates and times"), as Unix seconds in UTC.
//!
//! - [`parse_date`]: a DATE as the config and the command line take it:
//!   `YYYY-MM-DD` (that day's 00:00:00 UTC) or an RFC 3339 time with its
//!   offset (`Z` or `+hh:mm`/`-hh:mm`).
//! - [`parse`]: XML Schema's `xs:dateTime` (PSKC's StartDate and
//!   ExpiryDate): `YYYY-MM-DDThh:mm:ss`, optional fraction of a second,
//!   then `Z`, an offset (converted to UTC), or nothing. A time without a
//!   zone is taken as UTC; XML Schema leaves such a time's zone
//!   undefined, and vendors who omit it write UTC.
//! - [`format`]: RFC 3339 in UTC.
//!
//! Nothing here reads `TZ` or `/etc/localtime`: the module runs with its
//! caller's environment (su, sudo), which must not move a deadline.

/// Days from 1970-01-01 to the given day of the proleptic Gregorian
/// calendar (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `n` ASCII digits at the start of `s`, and the rest.
fn digits(s: &str, n: usize) -> Option<(i64, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, s.get(n..)?))
}

fn expect(s: &str, c: char) -> Option<&str> {
    s.strip_prefix(c)
}

/// Parses an `xs:dateTime` (surrounding white space allowed) into Unix
/// seconds; `None` for anything else, including dates that do not exist
/// (February 30), years before 1 or after 9999, and offsets beyond 14
/// hours. A fraction of a second is dropped; `24:00:00` is the next day's
/// midnight, as XML Schema defines it.
pub fn parse(text: &str) -> Option<i64> {
    let s = text.trim();
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(expect(s, '-')?, 2)?;
    let (day, s) = digits(expect(s, '-')?, 2)?;
    let (hour, s) = digits(expect(s, 'T')?, 2)?;
    let (minute, s) = digits(expect(s, ':')?, 2)?;
    let (second, mut s) = digits(expect(s, ':')?, 2)?;
    if let Some(rest) = s.strip_prefix('.') {
        let frac = rest.bytes().take_while(u8::is_ascii_digit).count();
        if frac == 0 {
            return None;
        }
        s = rest.get(frac..)?;
    }
    let offset = match s {
        "" | "Z" => 0,
        _ => {
            let sign = match s.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, rest) = digits(s.get(1..)?, 2)?;
            let (om, rest) = digits(expect(rest, ':')?, 2)?;
            if !rest.is_empty() || om > 59 || oh * 60 + om > 14 * 60 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let end_of_day = hour == 24 && minute == 0 && second == 0;
    if (hour > 23 && !end_of_day) || minute > 59 || second > 59 {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(local - offset)
}

/// A DATE (SPEC "Dates and times") as Unix seconds: `YYYY-MM-DD` is that
/// day's 00:00:00 UTC; otherwise an RFC 3339 time, which must carry its
/// offset (`Z` or `+hh:mm`: a time without one would be read in some zone
/// nobody wrote down). `None` for anything else and for times before 1970.
pub fn parse_date(text: &str) -> Option<u64> {
    let s = text.trim();
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        let zoned = s.ends_with('Z')
            || s.get(s.len().saturating_sub(6)..).is_some_and(|z| {
                (z.starts_with('+') || z.starts_with('-')) && z.get(3..4) == Some(":")
            });
        if !zoned {
            return None;
        }
        s.to_string()
    };
    u64::try_from(parse(&full)?).ok()
}

/// [`format`] of unsigned Unix seconds (the config's and the store's).
pub fn format_unix(t: u64) -> String {
    format(i64::try_from(t).unwrap_or(i64::MAX / 2))
}

/// Unix seconds as RFC 3339 in UTC: `2026-05-31T00:00:00Z`.
pub fn format(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Unsigned Unix seconds as a person reads them in a table:
/// `YYYY-MM-DD HH:MM UTC` (otp-enroll's `status`, `list`, `report`).
pub fn format_minutes(t: u64) -> String {
    let t = i64::try_from(t).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        s % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xs_date_times() {
        // Values from `date -u -d ... +%s` (GNU coreutils).
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2006-05-01T00:00:00Z"), Some(1_146_441_600));
        assert_eq!(parse(" 2026-05-31T00:00:00Z\n"), Some(1_780_185_600));
        assert_eq!(parse("2026-05-31T00:00:00"), Some(1_780_185_600));
        assert_eq!(parse("2026-05-31T02:00:00+02:00"), Some(1_780_185_600));
        assert_eq!(parse("2026-05-30T19:30:00-04:30"), Some(1_780_185_600));
        assert_eq!(parse("2026-05-31T00:00:00.999Z"), Some(1_780_185_600));
        assert_eq!(parse("2026-05-30T24:00:00Z"), Some(1_780_185_600));
        assert_eq!(parse("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(parse("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-1));
        for bad in [
            "",
            "2026-05-31",
            "2026-05-31 00:00:00Z",
            "01/01/2008",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-05-32T00:00:00Z",
            "2026-05-31T24:00:01Z",
            "2026-05-31T23:60:00Z",
            "2026-05-31T00:00:60Z",
            "2026-05-31T00:00:00+15:00",
            "2026-05-31T00:00:00+01:60",
            "2026-05-31T00:00:00+0100",
            "2026-05-31T00:00:00.Z",
            "2026-05-31T00:00:00ZZ",
            "0000-01-01T00:00:00Z",
            "-2026-05-31T00:00:00Z",
            "20260-05-31T00:00:00Z",
            "２０２６-05-31T00:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_are_days_in_utc_or_times_with_an_offset() {
        assert_eq!(parse_date("2026-05-31"), Some(1_780_185_600));
        assert_eq!(parse_date(" 2026-05-31 "), Some(1_780_185_600));
        assert_eq!(parse_date("2026-05-31T02:00:00+02:00"), Some(1_780_185_600));
        assert_eq!(parse_date("2026-05-31T00:00:00Z"), Some(1_780_185_600));
        assert_eq!(parse_date("2026-05-31T14:00:00+14:00"), Some(1_780_185_600));
        for bad in [
            "",
            "2026-05-31T00:00:00",
            "2026-5-31",
            "2026-02-30",
            "31/05/2026",
            "1969-12-31",
            "2026-05-31T00:00:00+0200",
            "tomorrow",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_is_rfc3339_utc_and_round_trips() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_780_185_600), "2026-05-31T00:00:00Z");
        assert_eq!(format(-1), "1969-12-31T23:59:59Z");
        for t in [
            -62_135_596_800,
            -1,
            0,
            951_825_599,
            951_825_600,
            1_780_185_661,
            253_402_300_799,
        ] {
            assert_eq!(parse(&format(t)), Some(t), "{t}");
        }
    }
}
