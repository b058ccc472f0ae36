//! `otp-enroll status`: what is set up, never the secret.

use otp_core::secret_file::{OtpKind, Token};
use otp_core::store::exempt::{Exemption, Standing};
use otp_core::store::TempCodeSummary;
use serde::Serialize;

use crate::commands::list;

use crate::error::Error;
use crate::json::{self, TempCodeJson, TokenJson};
use crate::output::{self, say};
use crate::target::Target;
use crate::{inventory, store};

/// What `status` says of a user root has reset (`otp-enroll reset`).
pub const PENDING: &str =
    "enrollment pending (otp-enroll reset or require): a new token is set up at the next login";

/// Whether the user's "enroll at next login" mark is set. Only root can
/// see the marks; a plain user (store `home`) is told nothing about them.
fn pending(t: &Target) -> bool {
    match store::pending(t) {
        Ok(p) => p,
        Err(e) => {
            if inventory::is_root() {
                output::warn(format_args!(
                    "otp-enroll: cannot tell whether an enrollment is pending: {}",
                    crate::output::shown(&e.to_string())
                ));
            }
            false
        }
    }
}

/// `status --json`: otp-enroll.status/1.
#[derive(Serialize)]
struct StatusJson {
    schema: String,
    user: String,
    store: &'static str,
    location: String,
    enrolled: bool,
    /// The record's format version.
    version: Option<u32>,
    tokens: Vec<TokenJson>,
    emergency_codes: Option<usize>,
    /// The rate limit's count of recent failed codes.
    failures: Option<u32>,
    /// Until when the rate limit refuses every code (null: not locked).
    locked_until: Option<u64>,
    /// Root's "enroll at next login" mark (`reset`); null when it cannot
    /// be told (a plain user cannot read root's marks).
    pending: Option<bool>,
    /// The temporary code (`temp-code`), null when there is none.
    temp_code: Option<TempCodeJson>,
    /// The user's exemption (`otp-enroll exempt`); null when there is
    /// none or it cannot be told (a plain user cannot read root's files).
    exemption: Option<ExemptionJson>,
}

/// An exemption as `status --json` and `list --json` give it.
#[derive(Serialize)]
pub struct ExemptionJson {
    /// Unix seconds: no code asked before it.
    until: u64,
    granted: u64,
    by: String,
    reason: String,
    /// Whether a login now would honour it (before `until`, within
    /// max_exemption of `granted`).
    active: bool,
}

/// The time and the longest exemption a login judges `t`'s exemption
/// by: the fleet database's own (its clock; this config's maximum may
/// only shorten its own), else this host's at `now`.
fn judged_at(t: &Target, now: u64) -> (u64, u64) {
    match t.store.exemption_judged_by() {
        Some((at, max)) => (at, max.min(t.config.max_exemption)),
        None => (now, t.config.max_exemption),
    }
}

/// The user's exemption, for root (`None` for a plain user, or none).
pub fn exemption(t: &Target) -> Option<Exemption> {
    if !inventory::is_root() {
        return None;
    }
    match t.store.exemption() {
        Ok(e) => e,
        Err(e) => {
            output::warn(format_args!(
                "otp-enroll: cannot read the exemption: {}",
                crate::output::shown(&e.to_string())
            ));
            None
        }
    }
}

pub fn exemption_json(t: &Target, now: u64) -> Option<ExemptionJson> {
    let e = exemption(t)?;
    let (at, max) = judged_at(t, now);
    Some(ExemptionJson {
        active: e.standing_for(t.account.uid, at, max) == Standing::Holds,
        until: e.until,
        granted: e.granted,
        by: e.by,
        reason: e.reason,
    })
}

/// One line on an exemption, for status and list.
pub fn exemption_line(t: &Target, now: u64) -> Option<String> {
    let e = exemption(t)?;
    let (at, max) = judged_at(t, now);
    let state = match e.standing_for(t.account.uid, at, max) {
        Standing::Holds => "no code asked".to_string(),
        Standing::Ended => "ended".to_string(),
        Standing::TooLong { .. } => "ignored at login: longer than max_exemption".to_string(),
        Standing::NotYetGranted => "ignored at login: granted after now".to_string(),
        Standing::OtherAccount { recorded } => format!(
            "ignored at login: granted to uid {recorded}, not this account's {}; \
             otp-enroll remove --orphans clears it",
            t.account.uid
        ),
        Standing::NoUid => "ignored at login: no uid recorded".to_string(),
    };
    Some(format!(
        "exempt until {} ({state}; granted {} by {}{})",
        format_utc(e.until),
        format_utc(e.granted),
        output::shown(&e.by),
        if e.reason.is_empty() {
            String::new()
        } else {
            format!(", reason: {}", output::shown(&e.reason))
        }
    ))
}

fn run_json(t: &Target, now: u64) -> Result<bool, Error> {
    let file = if store::exists(t)? {
        Some(store::read(t)?)
    } else {
        None
    };
    // Only root can see the marks; one that cannot be read is said on
    // standard error, as without --json, and is null here.
    let pending = match inventory::is_root() {
        true => match store::pending(t) {
            Ok(p) => Some(p),
            Err(_) => pending(t).then_some(true),
        },
        false => None,
    };
    let rl = t.config.rate_limit;
    json::print(&StatusJson {
        schema: json::schema("status"),
        user: t.account.name.clone(),
        store: t.config.store.as_str(),
        location: t.path_str(),
        // As a login sees it: a record holding only a spent temporary
        // code is no token.
        enrolled: file.as_ref().is_some_and(|f| f.has_token_at(now)),
        version: file.as_ref().map(|f| f.version),
        tokens: file
            .as_ref()
            .map(|f| f.tokens.iter().map(|x| TokenJson::of(x, now)).collect())
            .unwrap_or_default(),
        emergency_codes: file.as_ref().map(|f| f.scratch_codes.len()),
        failures: file.as_ref().map(|f| f.state.failures),
        locked_until: file
            .as_ref()
            .and_then(|f| rl.locked_for(&f.state, now).map(|s| now.saturating_add(s))),
        pending,
        temp_code: file
            .as_ref()
            .and_then(|f| f.temp_code.as_ref())
            .map(|t| TempCodeJson::of(&TempCodeSummary::of(t), now)),
        exemption: exemption_json(t, now),
    })?;
    Ok(file.is_some_and(|f| f.has_token_at(now)))
}

pub fn run(t: &Target, now: u64, json: bool) -> Result<bool, Error> {
    if json {
        return run_json(t, now);
    }
    if !store::exists(t)? {
        say!("{}: not enrolled (no {})", t.shown_name(), t.shown_path());
        if pending(t) {
            say!("{}: {PENDING}", t.shown_name());
        }
        if let Some(line) = exemption_line(t, now) {
            say!("{}: {line}", t.shown_name());
        }
        return Ok(false);
    }
    let f = store::read(t)?;
    say!("user:            {}", t.shown_name());
    say!(
        "secret file:     {} (version {})",
        t.shown_path(),
        f.version
    );
    say!("tokens:          {}", f.tokens.len());
    for token in &f.tokens {
        say!();
        token_lines(token, now)?;
    }
    if let Some(tc) = &f.temp_code {
        say!();
        say!(
            "temporary code:  {}",
            temp_code_line(&TempCodeSummary::of(tc), now)
        );
    }
    say!();
    say!("emergency codes: {} left", f.scratch_codes.len());
    let rl = t.config.rate_limit;
    let lock = match rl.locked_for(&f.state, now) {
        Some(s) => format!(
            "locked for {s} s more ({} failed attempts; otp-enroll unlock clears it)",
            f.state.failures
        ),
        None if f.state.failures > 0 => {
            format!("not locked ({} recent failed attempts)", f.state.failures)
        }
        None => "not locked".to_string(),
    };
    say!("lockout:         {lock}");
    if let Some(line) = exemption_line(t, now) {
        say!("exemption:       {line}");
    }
    if pending(t) {
        say!("{PENDING}");
        say!(
            "(while the user has the tokens above, they are what logs in: the enrollment comes once none is left; otp-enroll --user {} reset removes them)",
            t.shown_name()
        );
    }
    Ok(f.has_token_at(now))
}

/// A temporary code in one line, never the code: its state, uses left,
/// expiry, and when and by whom it was made.
pub fn temp_code_line(t: &TempCodeSummary, now: u64) -> String {
    let state = match t.gone_at(now) {
        None => format!(
            "active, {} use{} left, expires {}",
            t.uses_left,
            if t.uses_left == 1 { "" } else { "s" },
            format_utc(t.expires)
        ),
        Some(otp_core::secret_file::TempCodeGone::UsedUp) => "used up".to_string(),
        Some(otp_core::secret_file::TempCodeGone::Expired(at)) => {
            format!("expired {}", format_utc(at))
        }
    };
    format!(
        "{state} (made {} by {})",
        format_utc(t.created),
        output::shown(&t.created_by)
    )
}

/// One token's lines: what it is, never its key.
fn token_lines(t: &Token, now: u64) -> Result<(), Error> {
    say!("token:           {}", t.id);
    match t.kind {
        OtpKind::Totp => say!(
            "type:            TOTP (time-based), {}, {} digits, every {} s",
            t.algorithm.as_str(),
            t.digits,
            t.period
        ),
        OtpKind::Hotp => say!(
            "type:            HOTP (counter-based), {}, {} digits, next counter {}",
            t.algorithm.as_str(),
            t.digits,
            t.counter
        ),
    }
    if let Some(s) = &t.serial {
        say!("serial:          {}", output::shown(s));
    }
    say!(
        "created:         {}",
        t.created.map_or("unknown".to_string(), format_utc)
    );
    say!("last code used:  {}", list::last_used(t));
    if let Some(state) = super::lifecycle::describe(t, now) {
        say!("state:           {state}");
    }
    if t.kind == OtpKind::Totp && t.state.drift != 0 {
        say!(
            "clock offset:    the device runs {} step(s) {} (learned at login; otp-enroll unlock resets it)",
            t.state.drift.unsigned_abs(),
            if t.state.drift > 0 { "ahead" } else { "behind" }
        );
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC` from Unix time (otp-core's calendar, the one
/// the config's dates are read with).
pub fn format_utc(t: u64) -> String {
    otp_core::date::format_minutes(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::format_utc(1_111_111_111), "2005-03-18 01:58 UTC");
        assert_eq!(super::format_utc(1_709_210_096), "2024-02-29 12:34 UTC");
    }
}
