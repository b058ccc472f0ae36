//! A user with an authenticator app at a terminal, for enrollment at login
//! (`missing = "enroll"`): a program run on a pseudo-terminal (ssh, sftp,
//! su, pamtester) shows a QR code; the "phone" reads it from the screen
//! with zbarimg ([`crate::qr_scan`]) and types a code of the key in it
//! (oathtool).

use std::path::Path;
use std::process::Command;

use crate::qr_scan::decode_all;
use crate::{drive_pty, now, oathtool_totp, PtyRun, Sshd, TestUser};

/// The module's prompts during an enrollment.
pub const CONFIRM: &str = "Enter the code your app shows now: ";
/// The confirmation prompt before a rollout's deadline, which an empty
/// answer skips.
pub const CONFIRM_OPTIONAL: &str =
    "Enter the code your app shows now (or just Enter to skip for now): ";
pub const CODES_SEEN: &str = "Press Enter once you have written them down: ";

/// The key (base32) in an `otpauth://` URI.
pub fn secret_of(uri: &str) -> String {
    uri.split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in {uri}"))
        .to_string()
}

/// What the user at the terminal does, besides scanning.
#[derive(Default)]
pub struct User<'a> {
    /// Typed at each "Password: " (or [`User::password_prompt`]).
    pub password: Option<&'a str>,
    /// The password prompt, when not "Password: " (sudo's "[sudo]
    /// password for alice: "; `sudo -p` would replace the module's prompts
    /// too).
    pub password_prompt: Option<&'a str>,
    /// Wrong confirmation codes typed before the right one.
    pub wrong: usize,
    /// (prompt, line): typed at each new `prompt` (a shell's, sftp's).
    pub then: Option<(&'a str, &'a str)>,
    /// At an optional confirmation ([`CONFIRM_OPTIONAL`]), Enter (skip)
    /// instead of a code.
    pub skip: bool,
}

/// What the phone did.
#[derive(Default, Debug)]
pub struct Phone {
    /// The URIs read from the screen, at each confirmation prompt.
    pub scanned: Vec<String>,
    /// Confirmation codes typed.
    pub typed: usize,
}

/// Runs `line` (a shell command line) on a pty in a UTF-8 locale, as
/// `user` with a phone: at each confirmation prompt it scans the last QR
/// code on the screen and types a code of it (or a wrong one, `wrong`
/// times first), or at an optional one ([`CONFIRM_OPTIONAL`]) Enter when
/// `skip` says so; Enter after the emergency codes.
pub fn with_phone(line: &str, user: User<'_>) -> (PtyRun, Phone) {
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", line, "/dev/null"])
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8");
    let mut phone = Phone::default();
    let mut wrong_left = user.wrong;
    let (mut passwords, mut confirms, mut seen, mut thens) = (0, 0, 0, 0);
    let run = drive_pty(cmd, |screen| {
        if let Some(pw) = user.password {
            let prompt = user.password_prompt.unwrap_or("Password: ");
            if screen.matches(prompt).count() > passwords {
                passwords += 1;
                return Some(pw.to_string());
            }
        }
        let optional = screen.matches(CONFIRM_OPTIONAL).count();
        if screen.matches(CONFIRM).count() + optional > confirms {
            confirms += 1;
            if user.skip && optional > 0 {
                return Some(String::new());
            }
            let uri = decode_all(screen)
                .pop()
                .unwrap_or_else(|| panic!("no QR code on the screen:\n{screen}"));
            let code = oathtool_totp(&secret_of(&uri), Some(now()), &[]);
            phone.scanned.push(uri);
            phone.typed += 1;
            if wrong_left > 0 {
                wrong_left -= 1;
                return Some(if code == "123456" { "654321" } else { "123456" }.into());
            }
            return Some(code);
        }
        if screen.matches(CODES_SEEN).count() > seen {
            seen += 1;
            return Some(String::new());
        }
        if let Some((prompt, line)) = user.then {
            if screen.matches(prompt).count() > thens {
                thens += 1;
                return Some(line.to_string());
            }
        }
        None
    });
    (run, phone)
}

/// `ssh` (or with `program = "sftp"`, sftp) to the private sshd as `user`
/// with `key`, public key first, then keyboard-interactive, one round;
/// `tail` ends the command line (ssh's `-T user@host command`).
pub fn ssh_line(sshd: &Sshd, program: &str, key: &Path, tail: &str) -> String {
    let port = if program == "sftp" { "-P" } else { "-p" };
    format!(
        "exec {}env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE -u SSH_AUTH_SOCK \
         {program} -F /dev/null {port} {} -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
         -o ConnectTimeout=10 -o NumberOfPasswordPrompts=1 \
         -o IdentitiesOnly=yes -o IdentityAgent=none \
         -o PreferredAuthentications=publickey,keyboard-interactive \
         -i {} {tail}",
        sshd.client_prefix(),
        sshd.port,
        key.display(),
    )
}

/// `user@127.0.0.1`, for [`ssh_line`]'s tail.
pub fn at(user: &TestUser) -> String {
    format!("{}@127.0.0.1", user.name)
}

/// `user@<sshd's address>`, for [`ssh_line`]'s tail to an sshd in a
/// network namespace ([`Sshd::start_in`]).
pub fn at_sshd(user: &TestUser, sshd: &Sshd) -> String {
    format!("{}@{}", user.name, sshd.addr)
}
