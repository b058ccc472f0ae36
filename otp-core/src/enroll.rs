//! Enrollment inside the login (`missing = "enroll"`, or after `otp-enroll
//! reset`): a new key is shown as PAM text messages (a QR code of its
//! `otpauth://` URI, the URI, the key), one code from the app confirms it,
//! and only then is it saved, with emergency codes shown once.
//!
//! A token made during a login is saved only if that same login has proven
//! a first factor ([`first_factor`]): otherwise whoever knows a user name
//! could enroll their own phone for an account that has none.

use std::io;

use crate::key;
use crate::qr::{self, QrStyle};
use crate::random;
use crate::rate_limit::RateLimit;
use crate::secret_file::{OtpKind, SecretFile, Token, DEFAULT_ID};
use crate::uri;
use crate::verify::{self, Policy, Verdict};

pub const CONFIRM_PROMPT: &str = "Enter the code your app shows now: ";
/// Confirmation codes asked before the enrollment is refused (in a login
/// and by `otp-enroll new`).
pub const TRIES: usize = 3;
/// The question after the emergency codes, so that sshd shows them before
/// the session starts (it prints text that follows the last prompt only
/// in an interactive session's login messages).
pub const CODES_SEEN_PROMPT: &str = "Press Enter once you have written them down: ";

/// A new token offered to the user, not saved yet.
pub struct Offer {
    /// The record to save once confirmed: the token and the emergency codes.
    pub file: SecretFile,
    pub uri: String,
}

/// How this login proved the user's first factor, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum FirstFactor {
    /// sshd accepted another method before keyboard-interactive
    /// (`SSH_AUTH_INFO_0` names it): save at once.
    Proven(String),
    /// A password module earlier in the stack asked for a password
    /// (`PAM_AUTHTOK` is set), but whether it accepted it shows only when
    /// the whole stack has succeeded: save in `pam_sm_setcred`, which the
    /// application calls only then.
    AfterTheStack,
    /// Nothing shows a first factor: enrolling here would let anyone who
    /// knows the name set up the account's second factor.
    Unproven(&'static str),
}

/// The methods `SSH_AUTH_INFO_0` may list that prove who the user is.
/// `keyboard-interactive` is not among them: an earlier round of it runs
/// this same PAM stack.
const FIRST_FACTOR_METHODS: &[&str] = &[
    "publickey",
    "password",
    "hostbased",
    "gssapi-with-mic",
    "gssapi-keyex",
];

/// Decides from `SSH_AUTH_INFO_0` (sshd puts it in the PAM environment
/// before keyboard-interactive: one line per method already passed, e.g.
/// `publickey ssh-ed25519 AAAA...`) and whether `PAM_AUTHTOK` is set.
pub fn first_factor(ssh_auth_info: Option<&str>, authtok_set: bool) -> FirstFactor {
    match ssh_auth_info {
        Some(info) => {
            let method = info
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .find(|m| FIRST_FACTOR_METHODS.contains(m));
            match method {
                Some(m) => FirstFactor::Proven(format!("sshd accepted {m} first")),
                // In sshd, keyboard-interactive runs in a child process
                // whose PAM data is lost before pam_setcred, so a password
                // module in this stack cannot be waited for.
                None => FirstFactor::Unproven(
                    "sshd proved no other method before keyboard-interactive \
                     (SSH_AUTH_INFO_0 lists none; use AuthenticationMethods \
                     publickey,keyboard-interactive)",
                ),
            }
        }
        None if authtok_set => FirstFactor::AfterTheStack,
        None => FirstFactor::Unproven(
            "no first factor: no SSH_AUTH_INFO_0 from sshd and no password (PAM_AUTHTOK) \
             from a module earlier in the stack",
        ),
    }
}

/// This host's name, for the issuer and label of the URI ("localhost" if
/// it has none that can be shown): in a login and in `otp-enroll new`.
pub fn host_name() -> String {
    match nix::unistd::gethostname().map(|n| n.to_string_lossy().into_owned()) {
        // A ':' would end the issuer early in the key URI (uri::check_name).
        Ok(name)
            if !name.is_empty()
                && !name.chars().any(char::is_control)
                && uri::check_name(&name).is_ok() =>
        {
            name
        }
        _ => "localhost".into(),
    }
}

/// Whether `typed` is a current code of `token`, a new token not saved
/// yet: the one confirmation of a first code, for the enrollment inside a
/// login and for `otp-enroll new`. It is checked as a login checks a code
/// ([`verify::verify`]): within `totp_skew` steps of `now`, or
/// `hotp_window` counters from the token's counter. A right code is
/// marked used in `token` as a login marks it (the step or counter, the
/// drift learned, when), so that it cannot log in again once the token is
/// saved; a wrong one leaves `token` as it was. Emergency codes confirm
/// nothing (the token is checked alone).
#[must_use]
pub fn confirm_first_code(
    token: &mut Token,
    typed: &str,
    totp_skew: u32,
    hotp_window: u32,
    now: u64,
) -> bool {
    let mut alone = SecretFile::with_token(token.clone());
    let policy = Policy {
        totp_skew,
        hotp_window,
        rate_limit: RateLimit::default(),
    };
    match (
        verify::verify(&mut alone, typed, &policy, now),
        alone.tokens.pop(),
    ) {
        (Verdict::Accepted(_), Some(confirmed)) => {
            *token = confirmed;
            true
        }
        _ => false,
    }
}

/// A new TOTP token (SHA1, 6 digits, 30 s: what every app reads) and
/// emergency codes for `user` on `host`.
pub fn offer(user: &str, host: &str, now: u64) -> io::Result<Offer> {
    let mut token = Token::new(DEFAULT_ID, OtpKind::Totp, random::key()?);
    token.created = Some(now);
    let uri = uri::key_uri(&token, host, &format!("{user}@{host}"));
    let mut file = SecretFile::with_token(token);
    file.scratch_codes = random::scratch_codes(random::DEFAULT_SCRATCH_CODES)?;
    Ok(Offer { file, uri })
}

impl Offer {
    /// What is shown before the first confirmation prompt, one PAM text
    /// message each. The first line is text: ssh prints "(user@host) " in
    /// front of the first line of a prompt's text. `introduced`: the login
    /// has already said that the account has no token (before a deadline,
    /// with its date), so the heading that says it again is left out.
    pub fn messages(&self, introduced: bool) -> Vec<String> {
        let mut out = Vec::new();
        if !introduced {
            out.push("Two-factor login is not set up for this account yet: set it up now.".into());
        }
        if let Some(picture) = qr::render(&self.uri, QrStyle::Utf8) {
            out.push(
                "Scan this QR code with your authenticator app (Google Authenticator, FreeOTP, \
                 Aegis, ...); of the two copies, use the one with a light border:"
                    .into(),
            );
            out.push(picture.trim_end_matches('\n').to_string());
        }
        let key = self
            .file
            .tokens
            .first()
            .map(|t| key::grouped_base32(&t.key));
        out.push(format!(
            "Or add it by hand:\n  URI: {}\n  Key: {}   (base32, time-based, 6 digits)",
            self.uri,
            key.unwrap_or_default()
        ));
        out
    }

    /// Whether `typed` confirms the new token ([`confirm_first_code`],
    /// within `totp_skew` steps of `now`); a right code is marked used.
    #[must_use]
    pub fn confirms(&mut self, typed: &str, totp_skew: u32, now: u64) -> bool {
        match self.file.tokens.first_mut() {
            Some(token) => confirm_first_code(token, typed, totp_skew, 0, now),
            None => false,
        }
    }

    /// The emergency codes, shown once after the save.
    pub fn codes_message(&self) -> String {
        let mut text = String::from(
            "Two-factor login is set up. Your emergency codes (each works once instead of a \
             code; keep them somewhere safe):\n",
        );
        for code in &self.file.scratch_codes {
            text.push_str("  ");
            text.push_str(code);
            text.push('\n');
        }
        text.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, Generator};
    use crate::secret_file::State;

    const NOW: u64 = 1_700_000_000;

    fn code_at(offer: &Offer, t: u64) -> String {
        let key = &offer.file.tokens[0].key;
        Generator::new(key, Algorithm::SHA1, 6)
            .unwrap()
            .code(t / 30)
    }

    #[test]
    fn only_a_current_code_of_the_new_token_confirms_it() {
        let mut offer = offer("alice", "host.example", NOW).unwrap();
        assert!(!offer.confirms("000000", 1, NOW) || code_at(&offer, NOW) == "000000");
        assert!(!offer.confirms(&code_at(&offer, NOW + 300), 1, NOW));
        // An emergency code is not a code of the token.
        let scratch = offer.file.scratch_codes[0].clone();
        assert!(!offer.confirms(&scratch, 1, NOW));
        let right = code_at(&offer, NOW);
        assert!(offer.confirms(&right, 1, NOW));
        // Marked used: it cannot log in again once saved.
        assert_eq!(offer.file.tokens[0].state.last_step, Some(NOW / 30));
        assert_eq!(offer.file.state, State::default());
        assert_eq!(
            offer.file.scratch_codes.len(),
            random::DEFAULT_SCRATCH_CODES
        );
        offer.file.to_text().unwrap();
    }

    /// otp-enroll new confirms with the same function: an HOTP token within
    /// the config's window, a TOTP token whose device runs a step behind.
    #[test]
    fn a_first_code_is_confirmed_as_a_login_checks_it() {
        let key = b"12345678901234567890".to_vec();
        let g = Generator::new(&key, Algorithm::SHA1, 6).unwrap();
        let mut hotp = Token::new("key", OtpKind::Hotp, key.clone());
        let before = hotp.clone();
        assert!(!confirm_first_code(&mut hotp, &g.code(3), 1, 2, NOW));
        assert_eq!(hotp, before, "a wrong code changes nothing");
        assert!(confirm_first_code(&mut hotp, &g.code(2), 1, 2, NOW));
        assert_eq!((hotp.counter, hotp.state.last_used), (3, Some(NOW)));
        assert!(!confirm_first_code(&mut hotp, &g.code(2), 1, 2, NOW));

        let mut totp = Token::new("app", OtpKind::Totp, key);
        let behind = NOW / 30 - 1;
        assert!(!confirm_first_code(&mut totp, &g.code(behind), 0, 0, NOW));
        assert!(confirm_first_code(&mut totp, &g.code(behind), 1, 0, NOW));
        assert_eq!(totp.state.last_step, Some(behind));
        assert_eq!((totp.state.drift, totp.state.drift_moved), (-1, NOW));
        let mut other = Token::new("app", OtpKind::Totp, vec![7; 20]);
        assert!(
            !confirm_first_code(&mut other, "12345678", 1, 0, NOW),
            "8 digits"
        );
    }

    #[test]
    fn the_messages_hold_the_uri_the_key_and_a_qr_code() {
        let offer = offer("alice", "host.example", NOW).unwrap();
        let all = offer.messages(false).join("\n");
        assert!(offer
            .uri
            .starts_with("otpauth://totp/host.example:alice%40host.example?secret="));
        assert!(all.contains(&offer.uri));
        let key = key::grouped_base32(&offer.file.tokens[0].key);
        assert!(all.contains(&key));
        assert!(all.contains('▀') || all.contains('▄'));
        assert!(!offer.messages(false)[0].contains('\n'));
        for code in &offer.file.scratch_codes {
            assert!(
                !all.contains(code.as_str()),
                "codes are shown only after the save"
            );
            assert!(offer.codes_message().contains(code.as_str()));
        }
    }

    #[test]
    fn first_factor_is_read_from_sshd_or_left_to_the_stack() {
        let pk = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n";
        assert!(matches!(
            first_factor(Some(pk), false),
            FirstFactor::Proven(_)
        ));
        assert!(matches!(
            first_factor(Some("password\n"), true),
            FirstFactor::Proven(_)
        ));
        // sshd with nothing before keyboard-interactive, whatever the stack.
        assert!(matches!(
            first_factor(Some(""), true),
            FirstFactor::Unproven(_)
        ));
        assert!(matches!(
            first_factor(Some("keyboard-interactive\n"), true),
            FirstFactor::Unproven(_)
        ));
        assert_eq!(first_factor(None, true), FirstFactor::AfterTheStack);
        assert!(matches!(
            first_factor(None, false),
            FirstFactor::Unproven(_)
        ));
    }
}
