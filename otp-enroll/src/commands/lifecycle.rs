//! A token's lifecycle (issue 31): `disable` / `enable`, `expire`, and the
//! `--not-before` / `--expires` dates of `new` and `token`. The module
//! refuses a disabled token, or one outside its dates
//! (`otp_core::secret_file::Lifecycle`). Dates follow SPEC "Dates and
//! times": `YYYY-MM-DD` is that day's 00:00:00 UTC, an RFC 3339 time needs
//! its offset, nothing reads `TZ`; they are kept as Unix seconds.

use otp_core::secret_file::{Inactive, Lifecycle, Token};

use crate::commands::status::format_utc;
use crate::error::Error;
use crate::output::{say, shown};
use crate::store;
use crate::target::Target;

/// A DATE of the command line as Unix seconds: `YYYY-MM-DD` (00:00:00
/// UTC of that day) or an RFC 3339 time with its offset (`Z` or `±hh:mm`).
pub fn parse_date(option: &str, text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::usage(format!(
            "{option}: {} is not a date (YYYY-MM-DD, a day in UTC, or an RFC 3339 time with an offset, such as 2027-01-15T09:00:00+01:00)",
            shown(text)
        ))
    };
    otp_core::date::parse_date(text).ok_or_else(bad)
}

/// `--not-before` and `--expires` of `new` and `token`, checked.
pub fn from_options(
    not_before: Option<&str>,
    expires: Option<&str>,
) -> Result<Option<Lifecycle>, Error> {
    if not_before.is_none() && expires.is_none() {
        return Ok(None);
    }
    let life = Lifecycle {
        disabled: false,
        not_before: not_before
            .map(|d| parse_date("--not-before", d))
            .transpose()?,
        expires: expires.map(|d| parse_date("--expires", d)).transpose()?,
    };
    check_order(&life)?;
    Ok(Some(life))
}

pub fn check_order(life: &Lifecycle) -> Result<(), Error> {
    if let (Some(start), Some(end)) = (life.not_before, life.expires) {
        if end <= start {
            return Err(Error::usage(format!(
                "the token would never be valid: it expires ({}) at or before its not-before date ({})",
                format_utc(end),
                format_utc(start)
            )));
        }
    }
    Ok(())
}

/// The token's state at `now`, as list, status and report word it.
pub fn state_word(token: &Token, now: u64) -> &'static str {
    match token.lifecycle.inactive_at(now) {
        None => "active",
        Some(Inactive::Disabled) => "disabled",
        Some(Inactive::NotYetValid(_)) => "not_yet_valid",
        Some(Inactive::Expired(_)) => "expired",
    }
}

/// One line for status: the state and the dates, or `None` for an
/// enabled token without dates.
pub fn describe(token: &Token, now: u64) -> Option<String> {
    let life = &token.lifecycle;
    if life.is_default() {
        return None;
    }
    let mut parts = vec![state_word(token, now).replace('_', " ")];
    if let Some(s) = life.not_before {
        parts.push(format!("valid from {}", format_utc(s)));
    }
    if let Some(e) = life.expires {
        parts.push(format!("expires {}", format_utc(e)));
    }
    Some(parts.join(", "))
}

fn no_token(t: &Target, id: &str, file: &otp_core::secret_file::SecretFile) -> Error {
    let ids: Vec<String> = file
        .tokens
        .iter()
        .map(|x| format!("\"{}\"", shown(&x.id)))
        .collect();
    Error::refused(format!(
        "{} has no token \"{}\" (they have {}): nothing was changed",
        t.shown_name(),
        shown(id),
        ids.join(", ")
    ))
}

/// `disable --token ID` (`disable`) or `enable --token ID`.
pub fn disable(t: &Target, id: &str, disable: bool) -> Result<(), Error> {
    let changed = store::update(t, |file| {
        let Some(token) = file.token_mut(id) else {
            return Err(no_token(t, id, file));
        };
        let changed = token.lifecycle.disabled != disable;
        token.lifecycle.disabled = disable;
        Ok((changed, changed))
    })?;
    let (name, id) = (t.shown_name(), shown(id));
    match (changed, disable) {
        (true, true) => say!(
            "Disabled the token \"{id}\" of {name}: it accepts nothing until otp-enroll enable --token {id}."
        ),
        (true, false) => say!("Enabled the token \"{id}\" of {name}."),
        (false, true) => say!("The token \"{id}\" of {name} was disabled already: nothing was changed."),
        (false, false) => say!("The token \"{id}\" of {name} was not disabled: nothing was changed."),
    }
    Ok(())
}

/// `expire --token ID DATE|never`.
pub fn expire(t: &Target, id: &str, date: &str, now: u64) -> Result<(), Error> {
    let expires = match date {
        "never" => None,
        d => Some(parse_date("expire", d)?),
    };
    let changed = store::update(t, |file| {
        let Some(token) = file.token_mut(id) else {
            return Err(no_token(t, id, file));
        };
        let mut life = token.lifecycle;
        life.expires = expires;
        check_order(&life)?;
        let changed = life != token.lifecycle;
        token.lifecycle = life;
        Ok((changed, changed))
    })?;
    let (name, id) = (t.shown_name(), shown(id));
    let what = match expires {
        None => "never expires".to_string(),
        Some(e) if e <= now => format!("expired at {} (it accepts nothing now)", format_utc(e)),
        Some(e) => format!("expires at {}", format_utc(e)),
    };
    if changed {
        say!("The token \"{id}\" of {name} {what}.");
    } else {
        say!("The token \"{id}\" of {name} {what} already: nothing was changed.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days_or_zoned_times() {
        // `date -u -d 2027-01-15 +%s`
        assert_eq!(parse_date("x", "2027-01-15").unwrap(), 1_799_971_200);
        assert_eq!(
            parse_date("x", "2027-01-15T01:00:00+01:00").unwrap(),
            1_799_971_200
        );
        assert_eq!(
            parse_date("x", "2027-01-14T19:00:00-05:00").unwrap(),
            1_799_971_200
        );
        assert_eq!(
            parse_date("x", "2027-01-15T00:00:00Z").unwrap(),
            1_799_971_200
        );
        for bad in [
            "2027-01-15T00:00:00",
            "2027-02-30",
            "15/01/2027",
            "1969-12-31",
            "never",
            "",
        ] {
            assert!(parse_date("x", bad).is_err(), "{bad}");
        }
    }
}
