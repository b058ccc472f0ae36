//! Enrollment inside the login (`missing = "enroll"`), end to end: the
//! real sshd and the real ssh (and sftp) client on a pseudo-terminal, a
//! public key first, then keyboard-interactive. The "phone" reads the QR
//! code from what the client printed ([`testkit::qr_scan`], zbarimg), and
//! types a code of the key it holds (oathtool).
//!
//! And through pamtester, the stacks with a password module before
//! pam_otp: the token is kept until `pam_setcred`, which runs only after
//! the whole stack succeeded, so a wrong password saves nothing whether
//! the password module is `requisite` or `required`.

use testkit::phone::{at, secret_of, ssh_line, with_phone, Phone, User, CONFIRM};
use testkit::{authorize_key, Sshd, SshdSetup, TestUser, PROMPT};
use testkit::{now, oathtool_totp, secret_file, PamService, PtyRun};

const ENROLL: &str = "missing = \"enroll\"\n";
const PASSWORD: &str = "Enroll-pw-1";

fn sshd(methods: &str, config: &str) -> Sshd {
    Sshd::start(&SshdSetup {
        pam_auth: "auth required {module} config={config}\n",
        otp_config: config,
        authentication_methods: methods,
        sshd_extra: "Subsystem sftp internal-sftp\n",
    })
}

/// A user with a key sshd accepts, and no token.
fn user_with_key(sshd: &Sshd) -> (TestUser, std::path::PathBuf) {
    let user = TestUser::new();
    let (key, public) = sshd.client_key();
    authorize_key(&user, &public);
    (user, key)
}

#[track_caller]
fn assert_enrolled(run: &PtyRun, phone: &Phone, user: &TestUser, sshd: &Sshd) {
    assert!(
        run.success,
        "login failed: {run:#?}\n--- sshd log ---\n{}",
        sshd.log()
    );
    // What the client printed holds a QR code that reads as the URI it
    // printed as text too.
    let uri = phone.scanned.last().expect("a QR code was scanned");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        run.output.contains(&format!("URI: {uri}")),
        "{}",
        run.output
    );
    let file = secret_file(&user.secret_path());
    assert_eq!(
        otp_core::key::encode_base32(&file.tokens[0].key),
        secret_of(uri),
        "the key saved is the one shown"
    );
    // The emergency codes were shown, after the save.
    for code in &file.scratch_codes {
        assert!(run.output.contains(code.as_str()), "{code} not shown");
    }
}

#[test]
#[ignore = "needs root: make test"]
fn ssh_command_enrolls_after_a_public_key_and_the_next_login_asks_for_a_code() {
    let sshd = sshd("publickey,keyboard-interactive", ENROLL);
    let (user, key) = user_with_key(&sshd);
    let line = ssh_line(
        &sshd,
        "ssh",
        &key,
        &format!("-T {} echo enrolled-ok", at(&user)),
    );
    let (run, phone) = with_phone(&line, User::default());
    assert_enrolled(&run, &phone, &user, &sshd);
    assert!(
        run.output.contains("enrolled-ok"),
        "the command ran: {}",
        run.output
    );
    assert_eq!(phone.typed, 1);

    // The next login asks for a code (not for enrollment), and a code of
    // the saved key lets it in.
    let secret = secret_of(&phone.scanned[0]);
    let next = oathtool_totp(&secret, Some(now() + 30), &[]);
    let again = sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &next)
        .run();
    assert!(again.success, "{again:#?}\n{}", sshd.log());
    assert_eq!(again.asked(PROMPT), 1);
    assert_eq!(again.asked(CONFIRM), 0);
}

#[test]
#[ignore = "needs root: make test"]
fn sftp_session_enrolls_the_same_way() {
    let sshd = sshd("publickey,keyboard-interactive", ENROLL);
    let (user, key) = user_with_key(&sshd);
    let user_at_phone = User {
        then: Some(("sftp> ", "bye")),
        ..User::default()
    };
    let (run, phone) = with_phone(&ssh_line(&sshd, "sftp", &key, &at(&user)), user_at_phone);
    assert_enrolled(&run, &phone, &user, &sshd);
}

#[test]
#[ignore = "needs root: make test"]
fn three_wrong_confirmation_codes_save_nothing_and_refuse_the_login() {
    let sshd = sshd("publickey,keyboard-interactive", ENROLL);
    let (user, key) = user_with_key(&sshd);
    let line = ssh_line(&sshd, "ssh", &key, &format!("-T {} echo ran", at(&user)));
    let (run, phone) = with_phone(
        &line,
        User {
            wrong: 3,
            ..User::default()
        },
    );
    assert!(!run.success, "{run:#?}");
    assert_eq!(phone.typed, 3, "asked three times");
    assert!(!run.output.contains("ran\r\n"), "{}", run.output);
    assert!(!user.secret_path().exists(), "nothing saved");
}

#[test]
#[ignore = "needs root: make test"]
fn without_a_first_factor_sshd_shows_no_secret() {
    // Keyboard-interactive alone: SSH_AUTH_INFO_0 lists no method.
    let sshd = sshd("keyboard-interactive", ENROLL);
    let (user, key) = user_with_key(&sshd);
    let line = ssh_line(&sshd, "ssh", &key, &format!("-T {} echo ran", at(&user))).replace(
        "PreferredAuthentications=publickey,keyboard-interactive",
        "PreferredAuthentications=keyboard-interactive",
    );
    let (run, phone) = with_phone(&line, User::default());
    assert!(!run.success, "{run:#?}");
    assert!(phone.scanned.is_empty());
    assert!(!run.output.contains("otpauth://"), "{}", run.output);
    assert!(!user.secret_path().exists());
    assert!(
        run.output.contains("cannot be set up here"),
        "the user is told: {}",
        run.output
    );
}

// --- a password module before pam_otp -----------------------------------

fn password_stack(control: &str) -> PamService {
    PamService::with_config(
        &format!(
            "auth {control} pam_unix.so\n\
             auth required {{module}} config={{config}}\n\
             account required pam_permit.so\n"
        ),
        ENROLL,
    )
}

/// pamtester on a pty: the password, then the phone.
fn pamtester(pam: &PamService, user: &TestUser, password: &str, ops: &[&str]) -> (PtyRun, Phone) {
    let argv: Vec<String> = pam
        .pamtester_argv(&user.name, None, ops)
        .into_iter()
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
        .collect();
    with_phone(
        &format!("exec {}", argv.join(" ")),
        User {
            password: Some(password),
            ..User::default()
        },
    )
}

#[test]
#[ignore = "needs root: make test"]
fn a_wrong_password_then_a_right_confirmation_code_saves_nothing() {
    for control in ["requisite", "required"] {
        let pam = password_stack(control);
        let user = TestUser::new();
        user.set_password(PASSWORD);
        let (run, phone) = pamtester(&pam, &user, "wrong-password", &["authenticate", "setcred"]);
        assert!(!run.success, "{control}: {run:#?}");
        assert!(!user.secret_path().exists(), "{control}: a token was saved");
        match control {
            // The stack stops at the password module: no secret is shown.
            "requisite" => assert!(phone.scanned.is_empty(), "{run:#?}"),
            // pam_otp ran and the code was right, but the stack failed, so
            // pam_setcred never ran.
            _ => assert_eq!(phone.typed, 1, "{run:#?}"),
        }
    }
}

#[test]
#[ignore = "needs root: make test"]
fn a_right_password_and_code_save_the_token_at_setcred() {
    for control in ["requisite", "required"] {
        let pam = password_stack(control);
        let user = TestUser::new();
        user.set_password(PASSWORD);
        // Without pam_setcred nothing is saved: the stack's success shows
        // only to the application.
        let (run, _) = pamtester(&pam, &user, PASSWORD, &["authenticate"]);
        assert!(run.success, "{control}: {run:#?}");
        assert!(
            !user.secret_path().exists(),
            "{control}: saved before setcred"
        );

        let (run, phone) = pamtester(&pam, &user, PASSWORD, &["authenticate", "setcred"]);
        assert!(run.success, "{control}: {run:#?}");
        let file = secret_file(&user.secret_path());
        assert_eq!(
            otp_core::key::encode_base32(&file.tokens[0].key),
            secret_of(&phone.scanned[0])
        );
        for code in &file.scratch_codes {
            assert!(run.output.contains(code.as_str()), "{run:#?}");
        }
    }
}

#[test]
#[ignore = "needs root: make test"]
fn su_on_a_terminal_shows_a_code_the_phone_reads_and_saves_it_after_the_stack() {
    // The real su (util-linux) with pam_wrapper: its private "su" service
    // holds pam_unix, then pam_otp.
    let pam = PamService::named(
        "su",
        "auth required pam_unix.so\n\
         auth required {module} config={config}\n\
         account required pam_permit.so\n\
         session required pam_permit.so\n",
        ENROLL,
    );
    let user = TestUser::new();
    user.set_password(PASSWORD);
    let env: String = pam
        .env()
        .iter()
        .map(|(k, v)| format!("{k}='{v}' "))
        .collect();
    let line = format!("exec env {env}su {} -c 'echo OK-su'", user.name);
    let (run, phone) = with_phone(
        &line,
        User {
            password: Some(PASSWORD),
            ..User::default()
        },
    );
    assert!(run.success, "{run:#?}");
    assert!(run.output.contains("OK-su"), "{run:#?}");
    let file = secret_file(&user.secret_path());
    assert_eq!(
        otp_core::key::encode_base32(&file.tokens[0].key),
        secret_of(&phone.scanned[0]),
        "the key the phone read from su's terminal is the one saved"
    );
    for code in &file.scratch_codes {
        assert!(run.output.contains(code.as_str()), "{run:#?}");
    }
}
