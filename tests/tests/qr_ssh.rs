//! What a user sees of a QR code sent as PAM text messages through the
//! real sshd (OpenSSH 9.2, keyboard-interactive) to the real ssh client on
//! a pseudo-terminal, read back with zbar ([`testkit::qr_scan`]). This is
//! what enrolling inside the login (`missing = "enroll"`) will rely on.
//!
//! The server side needs no pam_otp: `pam_echo file=...` sends a file as
//! one PAM_TEXT_INFO (as the module should send its picture), `pam_exec
//! stdout` sends a script's output as one PAM_TEXT_INFO per line, and
//! `pam_unix` (the user's password) is the prompt that follows, standing
//! in for the module's "Enter the code your app shows now: ". The picture
//! is drawn by the renderer the module and otp-enroll use (`otp_core::qr`).
//!
//! What the tests show:
//! - sshd puts every message sent before a prompt, each followed by a
//!   newline, in front of that prompt; the client prints it with the
//!   prompt, `(user@host) ` once at its very start. Newlines inside a
//!   message and between messages survive (the terminal shows CR LF).
//! - Under a UTF-8 locale the half blocks arrive intact and the code
//!   reads as the exact URI. Under the C locale the client escapes each
//!   byte of them as `\ooo` (12 columns for one `█`): nothing is left of
//!   the picture, while ASCII text (the URI, the key, an ASCII drawing of
//!   the code) arrives intact.
//! - Messages after the last prompt of a successful login come as a
//!   banner: no prefix, shown only while the client's LogLevel is at
//!   least INFO (`ssh -q` drops them), with or without a command or a
//!   terminal; an interactive login (pty, no command) shows them twice,
//!   sshd printing its login messages again before the shell.
//! - Messages followed by a refusal come as ssh's log text: escaped even
//!   under UTF-8 and cut after about 1 KB.

use std::fs;
use std::path::PathBuf;

use testkit::qr_scan::decode_all;
use testkit::{run_in_pty, set_mode, test_root, unique, write_mode, PtyRun, Sshd, SshdSetup};
use testkit::{TestUser, TEST_ROOT};

use otp_core::qr::{self, QrStyle};

const URI: &str = "otpauth://totp/pam_otp:alice%40example.org?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=pam_otp";
const KEY: &str = "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP";
const INTRO: &str =
    "Two-factor login is not set up for this account yet. Scan this code with your app:";
/// pam_unix's prompt: the prompt after the messages.
const PROMPT: &str = "Password: ";
const PASSWORD: &str = "Qr-ssh-pw-1";

/// The enrollment text as the module will send it before its prompt: an
/// intro line, the picture, the URI and the key. No newline at the end:
/// sshd adds one after each message.
fn enrollment(picture: &str) -> String {
    format!("{INTRO}\n{picture}URI: {URI}\nKey: {KEY}")
}

/// The code in ASCII: `#` for a dark module, one column per module and
/// one line per row (so twice as tall as wide on a terminal), with the
/// 4-module quiet zone.
fn ascii_code(data: &str) -> String {
    let code = qrcode::QrCode::new(data.as_bytes()).unwrap();
    let w = code.width();
    let colors = code.to_colors();
    let mut out = String::new();
    for y in 0..w + 8 {
        for x in 0..w + 8 {
            let inside = (4..w + 4).contains(&x) && (4..w + 4).contains(&y);
            let dark = inside && colors[(y - 4) * w + (x - 4)] == qrcode::Color::Dark;
            out.push(if dark { '#' } else { ' ' });
        }
        out.push('\n');
    }
    out
}

/// `text` as ssh's filter prints it where it cannot print a character:
/// each byte of it as a backslash and three octal digits.
fn octal_escaped(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            0x20..=0x7e | b'\n' => char::from(b).to_string(),
            _ => format!("\\{b:03o}"),
        })
        .collect()
}

/// How the pseudo-terminal shows `text`: each newline as CR LF.
fn on_tty(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// Files the test's PAM stack reads; removed on drop.
struct Texts {
    dir: PathBuf,
}

impl Texts {
    fn new() -> Texts {
        let dir = test_root().join(unique("qrssh"));
        assert!(dir.starts_with(TEST_ROOT));
        fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        Texts { dir }
    }

    /// A file that `pam_echo file=` sends as one PAM_TEXT_INFO holding
    /// `message` exactly: pam_echo expands `%` sequences (`%%` is `%`)
    /// and drops its file's last newline.
    fn echo_file(&self, name: &str, message: &str) -> String {
        let path = self.dir.join(name);
        write_mode(&path, format!("{}\n", message.replace('%', "%%")), 0o644);
        path.to_string_lossy().into_owned()
    }

    /// A script whose output `pam_exec stdout` sends as one PAM_TEXT_INFO
    /// per line (without its newline).
    fn exec_script(&self, name: &str, message: &str) -> String {
        let text = self.dir.join(format!("{name}.txt"));
        write_mode(&text, format!("{message}\n"), 0o644);
        let script = self.dir.join(name);
        write_mode(
            &script,
            format!("#!/bin/sh\nexec cat '{}'\n", text.display()),
            0o755,
        );
        script.to_string_lossy().into_owned()
    }
}

impl Drop for Texts {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn sshd(pam_auth: &str) -> Sshd {
    Sshd::start(&SshdSetup {
        pam_auth,
        otp_config: "",
        authentication_methods: "keyboard-interactive",
        sshd_extra: "",
    })
}

fn user_with_password() -> TestUser {
    let user = TestUser::new();
    user.set_password(PASSWORD);
    user
}

/// `ssh OPTIONS user@127.0.0.1 COMMAND` under a pseudo-terminal, in the
/// locale `lang`, typing the password at its prompt and `exit` at a
/// shell's. Only keyboard-interactive, no keys, agent or known hosts.
fn login(sshd: &Sshd, user: &TestUser, lang: &str, options: &str, command: &str) -> PtyRun {
    let line = format!(
        "exec env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE -u SSH_AUTH_SOCK \
         ssh -F /dev/null -p {port} -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
         -o ConnectTimeout=10 -o NumberOfPasswordPrompts=1 \
         -o PreferredAuthentications=keyboard-interactive \
         -o PubkeyAuthentication=no -o IdentitiesOnly=yes -o IdentityAgent=none \
         {options} {user}@127.0.0.1 {command}",
        port = sshd.port,
        user = user.name,
    );
    run_in_pty(
        &line,
        &[("LANG", lang), ("LC_ALL", lang)],
        &[(PROMPT, PASSWORD), ("$ ", "exit")],
    )
}

/// The prompt as ssh shows it after the messages `before` sent ahead of
/// it: ssh's prefix, then every line on the terminal as it was sent.
fn prompt_after(user: &TestUser, before: &str) -> String {
    format!("({}@127.0.0.1) {}\r\n{PROMPT}", user.name, on_tty(before))
}

#[track_caller]
fn assert_logged_in(run: &PtyRun, sshd: &Sshd) {
    assert!(
        run.success,
        "login failed: {run:#?}\n--- sshd log ---\n{}",
        sshd.log()
    );
}

#[test]
#[ignore = "needs root: make test"]
fn utf8_locale_shows_the_half_blocks_intact_and_the_code_reads_as_the_uri() {
    let texts = Texts::new();
    let picture = qr::render(URI, QrStyle::Utf8).unwrap();
    let message = enrollment(&picture);
    let file = texts.echo_file("enroll", &message);
    let sshd = sshd(&format!(
        "auth optional pam_echo.so file={file}\nauth required pam_unix.so\n"
    ));
    let user = user_with_password();
    let run = login(&sshd, &user, "C.UTF-8", "-T", "true");
    assert_logged_in(&run, &sshd);
    let screen = &run.output;
    // Every line as sent, newlines and half blocks kept; ssh's prefix once,
    // on the intro line; the prompt on a line of its own.
    assert!(screen.contains(&prompt_after(&user, &message)), "{screen}");
    assert_eq!(screen.matches("@127.0.0.1) ").count(), 1, "{screen}");
    assert_eq!(decode_all(screen), [URI], "{screen}");
}

#[test]
#[ignore = "needs root: make test"]
fn one_message_per_line_shows_the_same() {
    let texts = Texts::new();
    let message = enrollment(&qr::render(URI, QrStyle::Utf8).unwrap());
    let script = texts.exec_script("enroll", &message);
    let sshd = sshd(&format!(
        "auth required pam_exec.so stdout quiet {script}\nauth required pam_unix.so\n"
    ));
    let user = user_with_password();
    let run = login(&sshd, &user, "C.UTF-8", "-T", "true");
    assert_logged_in(&run, &sshd);
    assert!(
        run.output.contains(&prompt_after(&user, &message)),
        "{}",
        run.output
    );
    assert_eq!(decode_all(&run.output), [URI], "{}", run.output);
}

#[test]
#[ignore = "needs root: make test"]
fn c_locale_escapes_the_half_blocks_and_leaves_ascii_intact() {
    let texts = Texts::new();
    let picture = qr::render(URI, QrStyle::Utf8).unwrap();
    let ascii = ascii_code(URI);
    let message = format!("{INTRO}\n{picture}In ASCII:\n{ascii}URI: {URI}\nKey: {KEY}");
    let file = texts.echo_file("enroll", &message);
    let sshd = sshd(&format!(
        "auth optional pam_echo.so file={file}\nauth required pam_unix.so\n"
    ));
    let user = user_with_password();
    let run = login(&sshd, &user, "C", "-T", "true");
    assert_logged_in(&run, &sshd);
    let screen = &run.output;
    // Each byte of a half block as \ooo, everything else as sent.
    assert!(
        screen.contains(&prompt_after(&user, &octal_escaped(&message))),
        "{screen}"
    );
    assert!(!screen.contains(['█', '▀', '▄']), "{screen}");
    let widest = screen.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(
        widest > 4 * 80,
        "a line of the picture takes {widest} columns"
    );
    // Nothing reads in the escaped half blocks; the ASCII code reads.
    let (half_blocks, rest) = screen.split_once("In ASCII:").unwrap();
    assert!(decode_all(half_blocks).is_empty(), "{half_blocks}");
    assert_eq!(decode_all(rest), [URI], "{rest}");
    assert!(screen.contains(&format!("URI: {URI}\r\nKey: {KEY}\r\n")));
}

#[test]
#[ignore = "needs root: make test"]
fn messages_after_the_last_prompt_come_as_a_banner_unless_ssh_is_quiet() {
    let texts = Texts::new();
    let message = enrollment(&qr::render(URI, QrStyle::Utf8).unwrap());
    let file = texts.echo_file("after", &message);
    let sshd = sshd(&format!(
        "auth required pam_unix.so\nauth optional pam_echo.so file={file}\n"
    ));
    let user = user_with_password();
    // Right after the answered prompt, as sent: no prefix.
    let shown = format!("{PROMPT}\r\n{}\r\n", on_tty(&message));

    let plain = login(&sshd, &user, "C.UTF-8", "-T", "true");
    assert_logged_in(&plain, &sshd);
    assert!(plain.output.contains(&shown), "{}", plain.output);
    assert_eq!(plain.output.matches(INTRO).count(), 1, "{}", plain.output);
    assert_eq!(decode_all(&plain.output), [URI], "{}", plain.output);

    let quiet = login(&sshd, &user, "C.UTF-8", "-T -q", "true");
    assert_logged_in(&quiet, &sshd);
    assert!(!quiet.output.contains(INTRO), "{}", quiet.output);
    assert!(decode_all(&quiet.output).is_empty(), "{}", quiet.output);

    let tty_command = login(&sshd, &user, "C.UTF-8", "-t", "true");
    assert_logged_in(&tty_command, &sshd);
    assert!(
        tty_command.output.contains(&shown),
        "{}",
        tty_command.output
    );
    assert_eq!(decode_all(&tty_command.output), [URI]);

    // A shell on a terminal: the banner, then sshd's login messages again.
    let shell = login(&sshd, &user, "C.UTF-8", "-t", "");
    assert_logged_in(&shell, &sshd);
    assert!(shell.output.contains(&shown), "{}", shell.output);
    assert_eq!(shell.output.matches(INTRO).count(), 2, "{}", shell.output);
    assert_eq!(decode_all(&shell.output), [URI, URI], "{}", shell.output);
}

#[test]
#[ignore = "needs root: make test"]
fn messages_before_a_refusal_arrive_escaped_and_cut() {
    let texts = Texts::new();
    let message = enrollment(&qr::render(URI, QrStyle::Utf8).unwrap());
    let file = texts.echo_file("refused", &message);
    let sshd = sshd(&format!(
        "auth required pam_unix.so\nauth optional pam_echo.so file={file}\n\
         auth requisite pam_deny.so\n"
    ));
    let user = user_with_password();
    let run = login(&sshd, &user, "C.UTF-8", "-T", "true");
    let screen = &run.output;
    assert!(!run.success, "{run:#?}");
    assert!(screen.contains("Permission denied"), "{screen}");
    assert!(screen.contains(INTRO), "{screen}");
    assert!(screen.contains("\\342\\226\\210"), "{screen}");
    assert!(!screen.contains(['█', '▀', '▄']), "{screen}");
    assert!(!screen.contains(&format!("URI: {URI}")), "{screen}");
    assert!(decode_all(screen).is_empty(), "{screen}");
}
