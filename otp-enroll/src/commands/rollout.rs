//! Per-user rollout commands (issue 31, item 5), root only: `require`
//! (enroll at the next login, whatever `missing` and `enforce_after` say)
//! and `exempt` / `unexempt` (no code until a date, at most
//! `max_exemption`). Both are kept by the store beside the record (the
//! file stores: root's `<state_dir>/pending/<user>` and
//! `<state_dir>/exempt/<user>`), so a user under `store = "home"` can
//! neither withdraw the one nor forge the other. The fleet's store keeps
//! both in the database (the mark with the account's uid; the exemption
//! granted by `admin_set_exemption` at the database's time, bounded by
//! its own `max_exemption` as well as this config's).

use otp_core::store::exempt::Ask;

use crate::audit::Actor;
use crate::commands::lifecycle::parse_date;
use crate::commands::status::format_utc;
use crate::error::Error;
use crate::output::{say, shown};
use crate::store;
use crate::target::Target;

/// What `require` does for a user with these tokens at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum RequireFor {
    /// No record: the mark is set.
    Mark,
    /// An active token: a code is asked at every login already.
    AlreadyEnrolled,
    /// A record, but no token accepts anything now (all disabled, expired
    /// or not yet valid, or none left): refused, so that a password thief
    /// cannot replace a token an administrator just stopped.
    Refused,
}

/// Decides `require` from the user's record (`None`: no record).
pub fn require_for(file: Option<&otp_core::secret_file::SecretFile>, now: u64) -> RequireFor {
    match file {
        None => RequireFor::Mark,
        Some(f)
            if f.tokens
                .iter()
                .any(|t| t.lifecycle.inactive_at(now).is_none()) =>
        {
            RequireFor::AlreadyEnrolled
        }
        Some(_) => RequireFor::Refused,
    }
}

pub fn require(t: &Target, now: u64) -> Result<(), Error> {
    let name = t.shown_name();
    let file = if store::exists(t)? {
        Some(store::read(t)?)
    } else {
        None
    };
    match require_for(file.as_ref(), now) {
        RequireFor::AlreadyEnrolled => {
            say!(
                "{name} has an active token: a code is asked at every login already; nothing was changed."
            );
            return Ok(());
        }
        RequireFor::Refused => {
            return Err(Error::refused(format!(
                "{name} has tokens, but none of them accepts codes now (disabled, expired or not yet \
                 valid): a new token at the next login would let whoever has the password replace \
                 them. Enable one (otp-enroll --user {name} enable --token ID, or expire --token ID \
                 never), or remove them with otp-enroll --user {name} reset once the password is \
                 known to be theirs alone. Nothing was changed."
            )));
        }
        RequireFor::Mark => {}
    }
    if t.store
        .set_exemption(None)
        .map_err(|e| store::error(t, e))?
    {
        say!("{name}: exemption withdrawn.");
    }
    let was = store::pending(t)?;
    store::set_pending(t, true)?;
    if was {
        say!("{name} was already to set up a token at the next login: nothing was changed.");
    } else {
        say!(
            "{name} will set up a token at the next login, whatever missing and enforce_after say."
        );
    }
    Ok(())
}

/// The end of an exemption asked for at `now` under `max` seconds, or why
/// it is refused.
pub fn exemption_end(until: Option<&str>, now: u64, max: u64) -> Result<u64, Error> {
    if max == 0 {
        return Err(Error::refused(
            "exemptions are off (max_exemption = 0 in the config): nothing was changed",
        ));
    }
    let Some(text) = until else {
        return Ok(now.saturating_add(max));
    };
    let end = parse_date("--until", text)?;
    if end <= now {
        return Err(Error::usage(format!(
            "--until: {} is not after now ({})",
            format_utc(end),
            format_utc(now)
        )));
    }
    if end - now > max {
        return Err(Error::refused(format!(
            "--until: {} is more than max_exemption ({} days) from now; the longest is {}: nothing was changed",
            format_utc(end),
            max / 86_400,
            format_utc(now + max)
        )));
    }
    Ok(end)
}

pub fn exempt(
    t: &Target,
    until: Option<&str>,
    reason: Option<&str>,
    now: u64,
) -> Result<(), Error> {
    let asked = until.is_some();
    let until = exemption_end(until, now, t.config.max_exemption)?;
    let reason = reason.unwrap_or("").trim().to_string();
    otp_core::store::exempt::Exemption::check_reason(&reason)
        .map_err(|why| Error::usage(format!("--reason: {why}")))?;
    // The store's time decides (the fleet's: the database's clock and
    // its own max_exemption, which may refuse what this host's allows).
    let e = t
        .store
        .grant_exemption(&Ask {
            until: asked.then_some(until),
            now,
            max: t.config.max_exemption,
            by: Actor::current().fields(),
            reason,
            uid: t.account.uid,
        })
        .map_err(|err| store::error(t, err))?;
    say!(
        "{}: no code asked until {} (granted {}{}).",
        t.shown_name(),
        format_utc(e.until),
        format_utc(e.granted),
        if e.reason.is_empty() {
            String::new()
        } else {
            format!(", reason: {}", shown(&e.reason))
        }
    );
    Ok(())
}

pub fn unexempt(t: &Target) -> Result<(), Error> {
    let name = t.shown_name();
    if t.store
        .set_exemption(None)
        .map_err(|e| store::error(t, e))?
    {
        say!("{name}: exemption withdrawn; a code is asked again.");
    } else {
        say!("{name} had no exemption: nothing was changed.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::secret_file::{OtpKind, SecretFile, Token};

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    #[test]
    fn require_marks_only_a_user_without_a_record() {
        let mut f = SecretFile::with_token(Token::new("phone", OtpKind::Totp, vec![1; 20]));
        assert_eq!(require_for(None, NOW), RequireFor::Mark);
        assert_eq!(require_for(Some(&f), NOW), RequireFor::AlreadyEnrolled);
        f.tokens[0].lifecycle.disabled = true;
        assert_eq!(require_for(Some(&f), NOW), RequireFor::Refused);
        f.tokens[0].lifecycle.disabled = false;
        f.tokens[0].lifecycle.expires = Some(NOW);
        assert_eq!(require_for(Some(&f), NOW), RequireFor::Refused);
        assert_eq!(require_for(Some(&f), NOW - 1), RequireFor::AlreadyEnrolled);
        let mut two = f.clone();
        two.tokens
            .push(Token::new("spare", OtpKind::Totp, vec![2; 20]));
        assert_eq!(require_for(Some(&two), NOW), RequireFor::AlreadyEnrolled);
    }

    #[test]
    fn an_exemption_is_bounded_by_max_exemption() {
        let max = 30 * DAY;
        assert_eq!(exemption_end(None, NOW, max).unwrap(), NOW + max);
        // 2027-01-15 is 1_799_971_200: in the past of NOW.
        assert!(exemption_end(Some("2027-01-15"), NOW, max).is_err());
        let d = |t: u64| otp_core::date::format_unix(t);
        assert_eq!(
            exemption_end(Some(&d(NOW + max)), NOW, max).unwrap(),
            NOW + max
        );
        let over = exemption_end(Some(&d(NOW + max + 1)), NOW, max).unwrap_err();
        assert!(
            over.to_string().contains("more than max_exemption"),
            "{over}"
        );
        assert!(exemption_end(Some(&d(NOW)), NOW, max).is_err());
        assert_eq!(exemption_end(Some(&d(NOW + 1)), NOW, max).unwrap(), NOW + 1);
        assert!(exemption_end(None, NOW, 0).is_err());
        assert!(exemption_end(Some("next week"), NOW, max).is_err());
    }
}
