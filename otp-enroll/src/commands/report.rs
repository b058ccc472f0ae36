//! `otp-enroll report [--json]` (root): every account that can log in
//! and every user the store knows, with their state, and the counts.
//!
//! The accounts are the name service's enumeration (`getent passwd`),
//! those with a login shell; the store's side is `otp_core::store::Census`
//! (under `home`, each home read as its user with a time limit; under
//! `postgresql`, one query, the lock judged by the database). What the
//! enumeration may miss (a directory service's accounts) is said, from
//! the passwd line of nsswitch.conf.

use std::collections::BTreeMap;
use std::time::Duration;

use otp_core::account::{self, Account};
use otp_core::config::{Config, StoreKind};
use otp_core::store::{self, Found, Summary};
use serde::Serialize;

use crate::commands::status::format_utc;
use crate::error::Error;
use crate::json;
use crate::output::{self, say, shown};

/// One line of the report.
struct Row {
    name: String,
    /// The name service knows the name.
    account: bool,
    /// Its shell is a login shell (`None`: not enumerated, so not known).
    login_shell: Option<bool>,
    found: Found,
    pending: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Enrolled,
    Pending,
    NotEnrolled,
    Unreadable,
    Skipped,
}

impl State {
    fn of(row: &Row, now: u64) -> State {
        match &row.found {
            // A record holding only a temporary code that accepts nothing
            // any more is no token to a login, nor here.
            Found::Record(s)
                if s.tokens.is_empty()
                    && s.temp_code
                        .as_ref()
                        .is_none_or(|t| t.gone_at(now).is_some()) =>
            {
                if row.pending {
                    State::Pending
                } else {
                    State::NotEnrolled
                }
            }
            Found::Record(_) => State::Enrolled,
            Found::Nothing if row.pending => State::Pending,
            Found::Nothing => State::NotEnrolled,
            Found::Unreadable(_) => State::Unreadable,
            Found::TimedOut | Found::NotTried => State::Skipped,
        }
    }

    fn json(self) -> &'static str {
        match self {
            State::Enrolled => "enrolled",
            State::Pending => "pending",
            State::NotEnrolled => "not_enrolled",
            State::Unreadable => "unreadable",
            State::Skipped => "skipped",
        }
    }

    fn text(self) -> &'static str {
        match self {
            State::NotEnrolled => "not enrolled",
            other => other.json(),
        }
    }
}

/// Why a row is unreadable or skipped.
fn reason(found: &Found, timeout: u64) -> Option<String> {
    match found {
        Found::Unreadable(why) => Some(why.clone()),
        Found::TimedOut => Some(format!("the home did not answer within {timeout} s")),
        Found::NotTried => Some(format!(
            "not tried: {} homes had not answered already",
            store::census::MAX_STUCK
        )),
        Found::Record(_) | Found::Nothing => None,
    }
}

#[derive(Serialize)]
struct ReportJson {
    schema: String,
    time: u64,
    store: &'static str,
    passwd_sources: Vec<String>,
    accounts_complete: bool,
    home_timeout: Option<u64>,
    users: Vec<UserJson>,
    counts: Counts,
}

#[derive(Serialize)]
struct UserJson {
    user: String,
    account: bool,
    login_shell: Option<bool>,
    state: &'static str,
    reason: Option<String>,
    pending: bool,
    /// `otp-enroll exempt`: null when none.
    exemption: Option<ReportExemption>,
    tokens: Vec<ReportToken>,
    emergency_codes: Option<usize>,
    last_used: Option<u64>,
    failures: Option<u32>,
    locked_until: Option<u64>,
    /// The temporary code (`temp-code`), null when there is none.
    temp_code: Option<json::TempCodeJson>,
}

#[derive(Serialize, Clone)]
struct ReportExemption {
    until: u64,
    granted: u64,
    by: String,
    reason: String,
    /// Whether a login at the report's time honours it.
    active: bool,
}

#[derive(Serialize)]
struct ReportToken {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    serial: Option<String>,
    created: Option<u64>,
    last_used: Option<u64>,
    /// At the report's time: active, disabled, not_yet_valid or expired.
    state: &'static str,
    not_before: Option<u64>,
    expires: Option<u64>,
}

#[derive(Serialize, Default)]
struct Counts {
    users: usize,
    enrolled: usize,
    locked: usize,
    pending: usize,
    not_enrolled: usize,
    unreadable: usize,
    skipped: usize,
}

/// The report; the exit code.
pub fn run(cfg: &Config, as_json: bool, home_timeout: u64, now: u64) -> Result<i32, Error> {
    let census = store::census(cfg);
    let listed = account::all_listed().map_err(|e| Error::failed(format!("report: {e}")))?;
    let shells = account::read_login_shells().map_err(|e| {
        Error::failed(format!(
            "report: {}: {}",
            account::SHELLS,
            shown(&e.to_string())
        ))
    })?;
    // Where accounts come from: a file that cannot be read is said, and the
    // list is then not claimed complete.
    let (sources, partial) = match account::read_passwd_sources() {
        Ok(sources) => {
            let partial = account::partial_sources(&sources);
            (sources, partial)
        }
        Err(e) => {
            output::warn(format_args!(
                "otp-enroll: {}: {}",
                account::NSSWITCH,
                shown(&e.to_string())
            ));
            (Vec::new(), vec!["(unknown)".to_string()])
        }
    };
    // Under home a record can be in any account's home (one without a
    // login shell may still log in to a VPN or a mail server through PAM).
    let accounts: Vec<Account> = listed.iter().map(|l| l.account.clone()).collect();
    let known = census
        .census(&accounts, Duration::from_secs(home_timeout))
        .map_err(|e| Error::failed(format!("report: {}", shown(&e.to_string()))))?;

    let exemptions: BTreeMap<String, ReportExemption> = census
        .exemptions()
        .map_err(|e| Error::failed(format!("report: {}", shown(&e.to_string()))))?
        .into_iter()
        .map(|(name, e)| {
            // Honoured only for the account it was granted to (its uid):
            // one of a deleted account whose name was given again, or of
            // a name that is no account, is not. Judged as a login judges
            // it: in the fleet by the database's clock and maximum (this
            // config's may only shorten it).
            let (at, max) = match census.exemption_judged_by() {
                Some((at, max)) => (at, max.min(cfg.max_exemption)),
                None => (now, cfg.max_exemption),
            };
            let active = accounts.iter().find(|a| a.name == name).is_some_and(|a| {
                e.standing_for(a.uid, at, max) == otp_core::store::exempt::Standing::Holds
            });
            (
                name,
                ReportExemption {
                    until: e.until,
                    granted: e.granted,
                    by: e.by,
                    reason: e.reason,
                    active,
                },
            )
        })
        .collect();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for l in &listed {
        rows.entry(l.account.name.clone()).or_insert(Row {
            name: l.account.name.clone(),
            account: true,
            login_shell: Some(shells.contains(&l.shell)),
            found: Found::Nothing,
            pending: false,
        });
    }
    for k in known {
        let row = rows.entry(k.name.clone()).or_insert_with(|| Row {
            // A name the enumeration did not list: one the name service
            // knows all the same (a directory's user), or none.
            account: account::plausible_user_name(&k.name)
                && matches!(account::lookup(&k.name), Ok(Some(_))),
            login_shell: None,
            name: k.name.clone(),
            found: Found::Nothing,
            pending: false,
        });
        row.found = k.found;
        row.pending = k.pending;
    }
    // An exemption of a name that has no row yet (an account without a
    // login shell, or a name that is no account any more): listed, so
    // that no exemption hides.
    for name in exemptions.keys() {
        rows.entry(name.clone()).or_insert_with(|| Row {
            account: account::plausible_user_name(name)
                && matches!(account::lookup(name), Ok(Some(_))),
            login_shell: None,
            name: name.clone(),
            found: Found::Nothing,
            pending: false,
        });
    }
    // Accounts that cannot log in and that the store knows nothing of are
    // not users of it.
    let rows: Vec<Row> = rows
        .into_values()
        .filter(|r| {
            r.login_shell == Some(true)
                || r.pending
                || r.found != Found::Nothing
                || exemptions.contains_key(&r.name)
        })
        .collect();

    let mut counts = Counts {
        users: rows.len(),
        ..Counts::default()
    };
    let rl = cfg.rate_limit;
    let locked = |s: &Summary| s.locked_until(&rl, now);
    for r in &rows {
        match State::of(r, now) {
            State::Enrolled => counts.enrolled += 1,
            State::Pending => counts.pending += 1,
            State::NotEnrolled => counts.not_enrolled += 1,
            State::Unreadable => counts.unreadable += 1,
            State::Skipped => counts.skipped += 1,
        }
        if let Found::Record(s) = &r.found {
            if locked(s).is_some() {
                counts.locked += 1;
            }
        }
    }
    let code = i32::from(counts.unreadable + counts.skipped > 0);
    let home = (cfg.store == StoreKind::Home).then_some(home_timeout);

    if as_json {
        let users = rows
            .iter()
            .map(|r| {
                let summary = match &r.found {
                    Found::Record(s) => Some(s),
                    _ => None,
                };
                UserJson {
                    user: r.name.clone(),
                    account: r.account,
                    login_shell: r.login_shell,
                    state: State::of(r, now).json(),
                    reason: reason(&r.found, home_timeout),
                    pending: r.pending,
                    exemption: exemptions.get(&r.name).cloned(),
                    tokens: summary
                        .map(|s| {
                            s.tokens
                                .iter()
                                .map(|t| ReportToken {
                                    id: t.id.clone(),
                                    kind: json::kind(t.kind),
                                    serial: t.serial.clone(),
                                    created: t.created,
                                    last_used: t.last_used,
                                    state: inactive_word(t.lifecycle.inactive_at(now)),
                                    not_before: t.lifecycle.not_before,
                                    expires: t.lifecycle.expires,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    emergency_codes: summary.map(|s| s.scratch_codes),
                    last_used: summary.and_then(Summary::last_used),
                    failures: summary.map(|s| s.failures),
                    locked_until: summary.and_then(locked),
                    temp_code: summary
                        .and_then(|s| s.temp_code.as_ref())
                        .map(|t| json::TempCodeJson::of(t, now)),
                }
            })
            .collect();
        json::print(&ReportJson {
            schema: json::schema("report"),
            time: now,
            store: cfg.store.as_str(),
            passwd_sources: sources,
            accounts_complete: partial.is_empty(),
            home_timeout: home,
            users,
            counts,
        })?;
        return Ok(code);
    }

    let mut table = vec![["USER", "STATE", "TOKENS", "LAST USED", "NOTE"].map(String::from)];
    for r in &rows {
        let state = State::of(r, now);
        let summary = match &r.found {
            Found::Record(s) => Some(s),
            _ => None,
        };
        let mut notes = Vec::new();
        if let Some(e) = exemptions.get(&r.name) {
            notes.push(format!(
                "exempt until {}{}{}",
                format_utc(e.until),
                if e.active { "" } else { " (not honoured now)" },
                if e.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", shown(&e.reason))
                }
            ));
        }
        if !r.account {
            notes.push("no account".to_string());
        } else if r.login_shell == Some(false) {
            notes.push("no login shell".to_string());
        }
        if let Some(s) = summary {
            if let Some(until) = locked(s) {
                notes.push(format!(
                    "locked until {} ({} failed attempts)",
                    format_utc(until),
                    s.failures
                ));
            }
            if r.pending {
                notes.push("reset pending: enrolls once no token is left".into());
            }
            let inactive: Vec<String> = s
                .tokens
                .iter()
                .filter_map(|t| {
                    let why = t.lifecycle.inactive_at(now)?;
                    Some(format!(
                        "{} {}",
                        t.id,
                        inactive_word(Some(why)).replace('_', " ")
                    ))
                })
                .collect();
            if let Some(tc) = &s.temp_code {
                notes.push(format!(
                    "temporary code {}",
                    crate::commands::status::temp_code_line(tc, now)
                ));
            }
            if !inactive.is_empty() {
                let all = inactive.len() == s.tokens.len();
                notes.push(format!(
                    "{}{}",
                    inactive.join(", "),
                    if all {
                        if s.temp_code
                            .as_ref()
                            .is_some_and(|t| t.gone_at(now).is_none())
                        {
                            " (no active token: only the temporary code logs in)"
                        } else {
                            " (no active token: refused at login)"
                        }
                    } else {
                        ""
                    }
                ));
            }
        } else if state == State::Pending {
            notes.push("reset: enrolls at the next login".into());
        }
        if let Some(why) = reason(&r.found, home_timeout) {
            notes.push(why);
        }
        table.push([
            shown(&r.name),
            state.text().to_string(),
            summary.map_or("-".into(), |s| s.tokens.len().to_string()),
            // As `list` says it: "never" for tokens not used yet, "-"
            // where there are none.
            summary.map_or("-".into(), |s| {
                s.last_used().map_or("never".into(), format_utc)
            }),
            shown(&notes.join("; ")),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        say!("{}", cells.join("  ").trim_end());
    }
    say!();
    say!(
        "{} users: {} enrolled ({} locked), {} pending, {} not enrolled, {} unreadable, {} skipped.",
        counts.users,
        counts.enrolled,
        counts.locked,
        counts.pending,
        counts.not_enrolled,
        counts.unreadable,
        counts.skipped
    );
    if !partial.is_empty() {
        say!(
            "The account list may be incomplete: the passwd line of {} names {}, which may not list every account (SSSD, LDAP and winbind usually list local accounts only); an account missing from the list is shown only when the store holds something of theirs.",
            account::NSSWITCH,
            shown(&partial.join(", "))
        );
    }
    let skipped: Vec<String> = rows
        .iter()
        .filter(|r| State::of(r, now) == State::Skipped)
        .map(|r| shown(&r.name))
        .collect();
    if !skipped.is_empty() {
        say!(
            "Skipped (the home did not answer within {home_timeout} s; see --home-timeout): {}.",
            skipped.join(", ")
        );
    }
    Ok(code)
}

/// A token's state as report --json words it.
fn inactive_word(why: Option<otp_core::secret_file::Inactive>) -> &'static str {
    use otp_core::secret_file::Inactive;
    match why {
        None => "active",
        Some(Inactive::Disabled) => "disabled",
        Some(Inactive::NotYetValid(_)) => "not_yet_valid",
        Some(Inactive::Expired(_)) => "expired",
    }
}
