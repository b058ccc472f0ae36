//! CSV lines as vendors ship them:
//! `serial,seed_hex[,hotp|totp[,digits[,period_or_counter]]]`.
//!
//! `#` comments and blank lines are allowed, fields may be quoted ("..."),
//! and a first line naming the columns (its first field "serial") is
//! skipped. A line that cannot be used is reported with its number and
//! skipped; the others are imported.

use otp_core::key;
use otp_core::otp::Algorithm;
use otp_core::secret_file::{OtpKind, DEFAULT_PERIOD};

use super::{HardwareToken, Parsed, Skipped, MAX_ENTRIES};
use crate::output::{quoted, shown};

fn field(f: &str) -> &str {
    let f = f.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(f, str::trim)
}

fn line(fields: &[&str]) -> Result<HardwareToken, String> {
    let (serial, seed, rest) = match fields {
        [serial, seed, rest @ ..] if rest.len() <= 3 => (*serial, *seed, rest),
        [_] => return Err("no seed (expected serial,seed_hex[,hotp|totp[,digits[,period_or_counter]]])".into()),
        _ => {
            return Err(format!(
                "{} fields, at most 5 expected (serial,seed_hex[,hotp|totp[,digits[,period_or_counter]]])",
                fields.len()
            ))
        }
    };
    if serial.is_empty() {
        return Err("no serial".into());
    }
    let key = key::decode_hex(seed).ok_or("the seed is not hex")?;
    let kind = match rest.first().copied() {
        None | Some("") => OtpKind::Hotp,
        Some(k) if k.eq_ignore_ascii_case("hotp") => OtpKind::Hotp,
        Some(k) if k.eq_ignore_ascii_case("totp") => OtpKind::Totp,
        Some(k) => return Err(format!("type {} is not hotp or totp", quoted(k))),
    };
    let digits = match rest.get(1).copied() {
        None | Some("") => 6,
        Some(d) => d
            .parse()
            .map_err(|_| format!("digits {} is not a number", quoted(d)))?,
    };
    let number = match rest.get(2).copied() {
        None | Some("") => None,
        Some(n) => Some(
            n.parse::<u64>()
                .map_err(|_| format!("period/counter {} is not a whole number", quoted(n)))?,
        ),
    };
    let c = HardwareToken {
        serial: serial.to_string(),
        kind,
        key,
        algorithm: Algorithm::SHA1,
        digits,
        period: match kind {
            OtpKind::Totp => number.unwrap_or(DEFAULT_PERIOD),
            OtpKind::Hotp => DEFAULT_PERIOD,
        },
        counter: match kind {
            OtpKind::Hotp => number.unwrap_or(0),
            OtpKind::Totp => 0,
        },
    };
    c.check()?;
    Ok(c)
}

/// Reads CSV text; `Err` refuses the whole file.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut first = true;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = l.split(',').map(field).collect();
        let header = first
            && fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case("serial"));
        first = false;
        if header {
            continue;
        }
        if out.tokens.len() + out.skipped.len() >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} lines of tokens"));
        }
        match line(&fields) {
            Ok(c) => out.tokens.push(c),
            Err(why) => {
                let serial = fields.first().copied().unwrap_or_default();
                let what = if serial.is_empty() {
                    format!("line {n}")
                } else {
                    format!("line {n} (serial {})", shown(serial))
                };
                out.skipped.push(Skipped {
                    what,
                    why,
                    serial: (!serial.is_empty()).then(|| serial.to_string()),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3132333435363738393031323334353637383930";

    #[test]
    fn lines_defaults_and_header() {
        let text = format!(
            "# vendor export\nserial,seed,type\n\nA1,{HEX}\n\"A2\", {HEX} ,totp,8,60\nA3,{HEX},HOTP,7,42\n"
        );
        let p = parse(&text).unwrap();
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        let [a1, a2, a3] = p.tokens.as_slice() else {
            panic!("{:?}", p.tokens)
        };
        assert_eq!(
            (a1.kind, a1.digits, a1.counter, a1.period),
            (OtpKind::Hotp, 6, 0, 30)
        );
        assert_eq!(a1.key, b"12345678901234567890");
        assert_eq!(
            (a2.serial.as_str(), a2.kind, a2.digits, a2.period),
            ("A2", OtpKind::Totp, 8, 60)
        );
        assert_eq!((a3.kind, a3.digits, a3.counter), (OtpKind::Hotp, 7, 42));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let text = format!(
            "B1,zz\nB2,{HEX},motp\nB3,{HEX},hotp,5\nB4,3132\n,{HEX}\nB6,{HEX},totp,6,0\nB7,{HEX},hotp,6,1,2\nB8\nB9,{HEX},hotp,6,-1\nOK,{HEX}\n"
        );
        let p = parse(&text).unwrap();
        assert_eq!(p.tokens.len(), 1);
        let got: Vec<String> = p
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.what, s.why))
            .collect();
        assert_eq!(got.len(), 9, "{got:?}");
        assert!(
            got[0].starts_with("line 1 (serial B1)") && got[0].contains("not hex"),
            "{got:?}"
        );
        assert!(got[1].contains("motp"));
        assert!(
            got[2].starts_with("line 3") && got[2].contains("digits"),
            "{got:?}"
        );
        assert!(got[3].contains("key"), "{got:?}");
        assert!(
            got[4].starts_with("line 5:") && got[4].contains("no serial"),
            "{got:?}"
        );
        assert!(got[5].contains("period"), "{got:?}");
        assert!(got[6].contains("6 fields"), "{got:?}");
        assert!(got[7].contains("no seed"), "{got:?}");
        assert!(got[8].starts_with("line 9"), "{got:?}");
    }

    #[test]
    fn a_header_is_only_the_first_line() {
        let p = parse(&format!("A1,{HEX}\nserial,{HEX}\n")).unwrap();
        assert_eq!(p.tokens.len(), 2);
    }
}
