//! Small text writers for the login path, where `format!` through
//! `core::fmt` costs more than the work itself (the module formats a log
//! line and rewrites the secret file at every login).

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
    }
    push_unsigned(out, value.unsigned_abs());
}

/// Appends `value` in decimal.
pub fn push_unsigned(out: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        // rest % 10 < 10: the cast cannot truncate.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Appends `value` as 16 lower-case hex digits.
pub fn push_hex16(out: &mut String, value: u64) {
    for shift in (0..16).rev() {
        // A nibble is < 16: always a hex digit.
        let nibble = ((value >> (shift * 4)) & 0xf) as u32;
        out.extend(char::from_digit(nibble, 16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_what_display_writes() {
        for v in [0, 7, -7, 10, 1 << 53, i64::MAX, i64::MIN] {
            let mut out = String::from("x=");
            push_decimal(&mut out, v);
            assert_eq!(out, format!("x={v}"));
        }
        let mut out = String::new();
        push_unsigned(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string());
    }

    #[test]
    fn hex_is_what_format_writes() {
        for v in [0, 1, 0xdead_beef, u64::MAX] {
            let mut out = String::new();
            push_hex16(&mut out, v);
            assert_eq!(out, format!("{v:016x}"));
        }
    }
}
