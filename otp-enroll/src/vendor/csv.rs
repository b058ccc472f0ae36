//! CSV lines as vendors ship them:
//! `serial,seed_hex[,hotp|totp[,digits[,period_or_counter]]]`.
//!
//! Read with the `csv` crate: fields may be quoted ("ACME, Inc", a `""`
//! inside), surrounding spaces are trimmed, `#` comments and blank lines
//! are allowed, and a first record naming the columns (its first field
//! "serial") is skipped. A record that cannot be used is reported with the
//! number of the line it starts on and skipped; the others are imported.

use otp_core::key;
use otp_core::otp::Algorithm;
use otp_core::secret_file::{OtpKind, DEFAULT_PERIOD};

use super::{quoted, shown, Parsed, Skipped, VendorToken, MAX_ENTRIES};

fn line(fields: &[&str]) -> Result<VendorToken, String> {
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
    let c = VendorToken {
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
        not_before: None,
        expires: None,
        pin: None,
    };
    c.check()?;
    Ok(c)
}

/// The number of the line a record starts on. The reader gives the byte
/// where it stopped after the record before, ahead of the line ends,
/// blank lines and `#` comment lines it then skipped (its own line count
/// lags the same way): skip those here, then count the line ends before.
fn start_line(text: &str, byte: u64) -> u64 {
    let at = usize::try_from(byte).unwrap_or(usize::MAX);
    let mut offset = 0;
    let mut number = 0;
    for line in text.split_inclusive('\n') {
        number += 1;
        let end = offset + line.len();
        if end > at {
            // The part of this line at or after `at`: the record starts
            // here unless that part is only a line end, or the whole line
            // is a comment.
            let from = at.saturating_sub(offset);
            let rest = line.get(from..).unwrap_or_default();
            let comment = from == 0 && line.starts_with('#');
            if !rest.trim_end_matches(['\r', '\n']).is_empty() && !comment {
                return number;
            }
        }
        offset = end;
    }
    number
}

/// Reads CSV text; `Err` refuses the whole file.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut first = true;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        // The input is a &str, so a record is always UTF-8; any other
        // error of the reader (none is known for flexible records) refuses
        // the file rather than skip what it could not read.
        let record = record.map_err(|e| format!("not CSV: {e}"))?;
        let n = record.position().map_or(0, |p| start_line(text, p.byte()));
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue; // a line of only commas or spaces
        }
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
                out.skipped.push(Skipped { what, why });
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

    /// Quoted fields as spreadsheets write them: a comma and a doubled
    /// quote inside, CRLF line ends, a quoted field over two lines; line
    /// numbers are those the record starts on.
    #[test]
    fn quoted_fields_keep_their_commas_and_quotes() {
        let text = format!(
            "serial,seed\r\n\"ACME, Inc 1\",{HEX}\r\n\"say \"\"hi\"\"\",\"{HEX}\",\"totp\"\r\n\"two\nlines\",zz\r\nLAST,{HEX}\r\n"
        );
        let p = parse(&text).unwrap();
        let serials: Vec<&str> = p.tokens.iter().map(|t| t.serial.as_str()).collect();
        assert_eq!(serials, ["ACME, Inc 1", "say \"hi\"", "LAST"]);
        assert_eq!(p.tokens[1].kind, OtpKind::Totp);
        let [bad] = p.skipped.as_slice() else {
            panic!("{:?}", p.skipped)
        };
        assert!(bad.what.starts_with("line 4 "), "{}", bad.what);
        assert!(bad.why.contains("not hex"), "{}", bad.why);
    }

    /// Line numbers count comments, blank lines and the lines inside a
    /// quoted field, as an editor shows them.
    #[test]
    fn skipped_records_name_the_line_they_start_on() {
        let text = "# c\n\nA,zz\r\n# c\n\"B\nB\",zz\n\n, ,\nC,zz";
        let p = parse(text).unwrap();
        let what: Vec<&str> = p.skipped.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "line 3 (serial A)",
                "line 5 (serial B\\x0aB)",
                "line 9 (serial C)"
            ]
        );
    }

    #[test]
    fn a_header_is_only_the_first_line() {
        let p = parse(&format!("A1,{HEX}\nserial,{HEX}\n")).unwrap();
        assert_eq!(p.tokens.len(), 2);
    }
}
