//! Small text writers for the login path, where `format!` through
//! `core::fmt` costs more than the work itself (the module formats a log
//! line and rewrites the secret file at every login).

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        // rest % 10 < 10: the cast cannot truncate.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
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
    }
}
