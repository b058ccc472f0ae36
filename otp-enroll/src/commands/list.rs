//! `otp-enroll list`: the user's tokens, one a line, never a secret.

use otp_core::secret_file::{OtpKind, Token};
use serde::Serialize;

use crate::commands::lifecycle;
use crate::commands::status;
use crate::commands::status::format_utc;
use crate::error::Error;
use crate::json::{self, TempCodeJson, TokenJson};
use crate::output::{say, shown};
use crate::store;
use crate::target::Target;
use otp_core::store::TempCodeSummary;

/// When a code of `token` was last accepted: recorded by logins in a
/// version 2 file; a version 1 file's TOTP token has only its last step.
pub fn last_used(token: &Token) -> String {
    last_used_at(token).map_or("never".to_string(), format_utc)
}

/// [`last_used`] as Unix time.
pub fn last_used_at(token: &Token) -> Option<u64> {
    match (token.state.last_used, token.kind, token.state.last_step) {
        (Some(t), _, _) => Some(t),
        (None, OtpKind::Totp, Some(step)) => Some(step.saturating_mul(token.period)),
        _ => None,
    }
}

/// `list --json`: otp-enroll.list/1.
#[derive(Serialize)]
struct ListJson {
    schema: String,
    user: String,
    store: &'static str,
    location: String,
    tokens: Vec<TokenJson>,
    /// The temporary code (`temp-code`), null when there is none.
    temp_code: Option<TempCodeJson>,
    /// Root's "enroll at next login" mark (reset, require); null for a
    /// plain user, who cannot read it.
    pending: Option<bool>,
    /// As status --json gives it.
    exemption: Option<status::ExemptionJson>,
}

/// The lines after the table (or after "no tokens"): the mark and the
/// exemption, which only root can read.
fn marks(t: &Target, now: u64) -> Result<(), Error> {
    if crate::inventory::is_root() && store::pending(t).unwrap_or(false) {
        say!("{}: {}", t.shown_name(), status::PENDING);
    }
    if let Some(line) = status::exemption_line(t, now) {
        say!("{}: {line}", t.shown_name());
    }
    Ok(())
}

pub fn run(t: &Target, json: bool, now: u64) -> Result<bool, Error> {
    let exists = store::exists(t)?;
    if json {
        let file = match exists {
            true => Some(store::read(t)?),
            false => None,
        };
        let tokens = file
            .iter()
            .flat_map(|f| f.tokens.iter().map(|x| TokenJson::of(x, now)))
            .collect();
        json::print(&ListJson {
            schema: json::schema("list"),
            user: t.account.name.clone(),
            store: t.config.store.as_str(),
            location: t.path_str(),
            tokens,
            temp_code: file
                .as_ref()
                .and_then(|f| f.temp_code.as_ref())
                .map(|c| TempCodeJson::of(&TempCodeSummary::of(c), now)),
            pending: crate::inventory::is_root()
                .then(|| store::pending(t).ok())
                .flatten(),
            exemption: status::exemption_json(t, now),
        })?;
        return Ok(exists);
    }
    if !exists {
        say!("{}: no tokens (no {})", t.shown_name(), t.shown_path());
        marks(t, now)?;
        return Ok(false);
    }
    let f = store::read(t)?;
    let rows: Vec<[String; 6]> = f
        .tokens
        .iter()
        .map(|token| {
            [
                token.id.clone(),
                token.kind.as_str().to_uppercase(),
                // A serial comes from the user's own file (store "home"),
                // which the secret file's checks let hold bidi and format
                // characters: shown escaped, as everything from input.
                token.serial.as_deref().map_or("-".into(), shown),
                token.created.map_or("unknown".into(), format_utc),
                last_used(token),
                lifecycle::describe(token, now).unwrap_or_else(|| "active".into()),
            ]
        })
        .collect();
    let header = ["ID", "TYPE", "SERIAL", "CREATED", "LAST USED", "STATE"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if rows.is_empty() {
        say!("{}: no tokens", t.shown_name());
    }
    for row in std::iter::once(&header)
        .chain(&rows)
        .filter(|_| !f.tokens.is_empty())
    {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        say!("{}", cells.join("  ").trim_end());
    }
    if let Some(tc) = &f.temp_code {
        say!(
            "temporary code: {}",
            crate::commands::status::temp_code_line(&TempCodeSummary::of(tc), now)
        );
    }
    marks(t, now)?;
    Ok(true)
}
