//! `otp-enroll unlock`: clear the failed-attempt lockout and forget the
//! learned clock drift; as root on the file stores, also the failure
//! tally of a user without a token (`<state_dir>/unenrolled/<user>.toml`,
//! see otp_core::unenrolled). Under `store = "postgresql"` that tally is
//! the database's `pam_otp.unenrolled`, cleared through the admin role
//! (`admin_clear_unenrolled`; the audit row is unlock's).

use std::path::Path;

use otp_core::config::StoreKind;
use otp_core::rate_limit::RateLimit;
use otp_core::unenrolled;

use crate::error::Error;
use crate::output::say;
use crate::store;
use crate::target::Target;

/// Forgets the tally of failures without a token: root's file, on the
/// file stores; whether there was one.
fn clear_unenrolled_tally(t: &Target) -> Result<bool, Error> {
    if !crate::inventory::is_root() {
        return Ok(false);
    }
    if t.config.store == StoreKind::Postgresql {
        return t.store.clear_unenrolled().map_err(|e| store::error(t, e));
    }
    unenrolled::remove(Path::new(&t.config.state_dir), &t.account.name)
        .map_err(|e| Error::failed(crate::output::shown(&e.to_string())))
}

pub fn run(t: &Target) -> Result<(), Error> {
    let tally = clear_unenrolled_tally(t)?;
    if tally && !store::exists(t)? {
        say!(
            "Unlocked {} (no token; the failure tally of a user without a token cleared).",
            t.shown_name()
        );
        return Ok(());
    }
    let (had, drifted) = store::update(t, |f| {
        let had = f.state.failures;
        let drifted: Vec<String> = f
            .tokens
            .iter()
            .filter(|t| t.state.drift != 0)
            .map(|t| format!("\"{}\" (was {} steps)", t.id, t.state.drift))
            .collect();
        let changed = f.state.failures != 0
            || f.state.last_failure != 0
            || f.tokens
                .iter()
                .any(|t| t.state.drift != 0 || t.state.drift_moved != 0);
        RateLimit::record_success(&mut f.state);
        // The way back from a drift pushed away from the real device (see
        // otp_core::verify::DRIFT_MOVE_INTERVAL); the used steps stay used.
        for token in &mut f.tokens {
            token.state.forget_drift();
        }
        Ok(((had, drifted), changed))
    })?;
    if drifted.is_empty() {
        say!(
            "Unlocked {} ({had} failed attempts cleared).",
            t.shown_name()
        );
    } else {
        say!(
            "Unlocked {} ({had} failed attempts cleared; learned clock drift reset to 0 for {}).",
            t.shown_name(),
            drifted.join(", ")
        );
    }
    Ok(())
}
