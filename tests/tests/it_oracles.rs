//! What a guesser can learn or break through the real libpam (pamtester +
//! pam_wrapper, the built module, pam_unix): whether a name is an account,
//! whether an account is enrolled, and whether a wrong password can lock
//! someone out or burn their code (`split_pass`).

use testkit::fixtures::*;

const RHOST: Option<&str> = Some("203.0.113.7");
const FORWARD_PROMPT: &str = "Password & verification code: ";
/// pam_unix's own prompt.
const UNIX_PROMPT: &str = "Password: ";
const LOCKED: &str = "Too many failed attempts";

/// The one-prompt stack of recipe 2b (doc/admin-guide.md).
const SPLIT_STACK: &str = "auth requisite {module} config={config} split_pass\n\
                           auth requisite pam_unix.so use_first_pass\n\
                           auth required {module} config={config}\n";

fn enrolled(password: &str) -> TestUser {
    let user = TestUser::new();
    user.write_secret(&totp_secret());
    user.set_password(password);
    user
}

/// The prompts and messages a login showed, without pamtester's verdict
/// (which tells PAM_USER_UNKNOWN from PAM_AUTH_ERR: the program, not the
/// remote guesser, sees that) and pam_wrapper's noise (which has a pid).
fn conversation(run: &PamRun) -> Vec<String> {
    output(run)
        .lines()
        .filter(|l| !l.starts_with("PWRAP_"))
        .map(|l| l.split("pamtester:").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
#[ignore = "needs root: make test"]
fn a_name_that_is_no_account_is_prompted_like_an_account() {
    let svc = simple_service("");
    let user = enrolled("s3cret-Pw");
    let real = svc.authenticate(&user.name, RHOST, &format!("{}\n", wrong_code()));
    let ghost = svc.authenticate("potnosuchuser", RHOST, &format!("{}\n", wrong_code()));
    assert!(!ghost.success, "{ghost:?}");
    assert!(output(&ghost).contains(PROMPT), "not prompted: {ghost:?}");
    // The contract's return code for no such user (SPEC "Exit and return
    // codes"), after the same conversation.
    assert!(output(&ghost).contains(USER_UNKNOWN), "{ghost:?}");
    assert_eq!(conversation(&real), conversation(&ghost));
}

/// pamtester's verdict line: the PAM return code as pam_strerror words it.
fn verdict(run: &PamRun) -> String {
    output(run)
        .lines()
        .filter_map(|l| {
            l.split_once("pamtester:")
                .map(|(_, v)| v.trim().to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a login showed the person typing: [`conversation`] (no verdict)
/// with the user's own name and what is new at every enrollment (the key,
/// its QR code) masked.
fn as_seen(run: &PamRun, user: &str) -> Vec<String> {
    conversation(run)
        .iter()
        // The verdict's line leaves an empty one, placed by where stdout
        // and stderr meet.
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.contains("otpauth://") || l.contains("Key:") {
                "<key>".to_string()
            } else if !l.is_ascii() {
                "<QR code>".to_string()
            } else {
                l.replace(user, "<user>")
            }
        })
        .collect()
}

/// A log line without its pid, its user name, its priority, its result and
/// its reason: what must be the same for an unknown name and an account
/// (the result and reason are the truth the log keeps).
fn without_reason(line: &str, user: &str) -> String {
    let head = line.split('[').next().unwrap_or_default();
    let head = head.trim_start_matches(|c: char| c == '<' || c == '>' || c.is_ascii_digit());
    let body = line.split_once("]: ").map_or(line, |(_, b)| b);
    let body = body.split(" reason=").next().unwrap_or_default();
    let body = body.split(" result=").next().unwrap_or_default();
    format!("{head} {}", body.replace(user, "<user>"))
}

/// An unknown name sees exactly what an account without a token sees,
/// under every `missing` and on both file stores, through the real libpam:
/// the same prompts and messages in the same order; the log lines differ
/// only in their reason, which says "no such user"; the PAM return code is
/// the contract's PAM_USER_UNKNOWN (which the program sees, not the person
/// typing) wherever the account's is a verdict of pam_otp's own. Before,
/// under `missing = "allow"`, the account was told "not set up" while the
/// unknown name was asked for a code.
#[test]
#[ignore = "needs root: make test"]
fn a_name_that_is_no_account_gets_what_an_account_without_a_token_gets() {
    const GHOST: &str = "potnosuchuser";
    let account = TestUser::new();
    account.set_password("s3cret-Pw");
    let stacks = [
        OTP_ONLY,
        // forward_pass sets PAM_AUTHTOK: enrollment goes as far as the
        // confirmation prompts.
        "auth required {module} config={config} forward_pass\n",
    ];
    let typed = format!("s3cret-Pw{w}\n{w}\n{w}\n{w}\n", w = wrong_code());
    let mut seen_outcomes = Vec::new();
    for store in ["home", "system"] {
        for missing in ["allow", "deny", "enroll"] {
            for stack in stacks {
                let svc = PamService::with_config(
                    stack,
                    &format!("store = \"{store}\"\nmissing = \"{missing}\"\n"),
                );
                let sink = testkit::syslog::LogSink::new();
                let (a, a_log) =
                    testkit::syslog::logged_run(&svc, &sink, &account.name, RHOST, &typed);
                let (n, n_log) = testkit::syslog::logged_run(&svc, &sink, GHOST, RHOST, &typed);
                let what = format!("store {store}, missing {missing}, {stack:?}: {a:?} {n:?}");
                assert!(!n.success, "{what}");
                let (va, vn) = (verdict(&a), verdict(&n));
                if a.success || va.contains(AUTH_ERR) {
                    assert!(vn.contains(USER_UNKNOWN), "{what}: {vn}");
                } else {
                    assert_eq!(va, vn, "{what}");
                }
                assert_eq!(as_seen(&a, &account.name), as_seen(&n, GHOST), "{what}");
                let a_log: Vec<String> = a_log
                    .iter()
                    .map(|l| without_reason(l, &account.name))
                    .collect();
                let n_reasons: Vec<&String> =
                    n_log.iter().filter(|l| l.contains(" reason=")).collect();
                let n_log: Vec<String> = n_log.iter().map(|l| without_reason(l, GHOST)).collect();
                assert_eq!(a_log, n_log, "{what}");
                assert_eq!(n_reasons.len(), 1, "{what}: {n_reasons:?}");
                assert!(
                    n_reasons[0].contains("reason=\"no such user; "),
                    "{what}: {n_reasons:?}"
                );
                seen_outcomes.push(format!("{missing}: {}", a.success));
            }
            assert!(!account.secret_path().exists(), "{store} {missing}");
        }
    }
    // The cases did differ from each other: allow lets both through
    // pam_otp, deny and enroll (with no code confirmed) refuse both.
    assert!(
        seen_outcomes.contains(&"allow: true".to_string()),
        "{seen_outcomes:?}"
    );
    assert!(
        seen_outcomes.contains(&"deny: false".to_string()),
        "{seen_outcomes:?}"
    );
    assert!(
        seen_outcomes.contains(&"enroll: false".to_string()),
        "{seen_outcomes:?}"
    );
}

#[test]
#[ignore = "needs root: make test"]
fn forward_pass_hands_an_unenrolled_users_password_on_too() {
    // With try_first_pass, pam_unix asks "Password: " itself when no
    // PAM_AUTHTOK was set: that extra prompt told who is enrolled.
    let svc = PamService::with_config(
        "auth required {module} config={config} forward_pass\n\
         auth required pam_unix.so try_first_pass\n",
        "missing = \"deny\"\n",
    );
    let enrolled_user = enrolled("s3cret-Pw");
    let unenrolled = TestUser::new();
    unenrolled.set_password("s3cret-Pw");
    let typed = format!("s3cret-Pw{}\nextra\n", wrong_code());
    let a = svc.authenticate(&enrolled_user.name, RHOST, &typed);
    let b = svc.authenticate(&unenrolled.name, RHOST, &typed);
    assert!(!a.success && !b.success, "{a:?} {b:?}");
    assert!(!output(&b).contains(UNIX_PROMPT), "extra prompt: {b:?}");
    assert_eq!(conversation(&a), conversation(&b));
}

#[test]
#[ignore = "needs root: make test"]
fn an_unenrolled_user_is_rate_limited_like_an_enrolled_one() {
    let svc = simple_service("missing = \"deny\"\n[rate_limit]\nmax_failures = 3\ninterval = 30\n");
    let enrolled_user = enrolled("s3cret-Pw");
    let unenrolled = TestUser::new();
    for user in [&enrolled_user, &unenrolled] {
        let runs: Vec<PamRun> = (0..4)
            .map(|_| svc.authenticate(&user.name, RHOST, &format!("{}\n", wrong_code())))
            .collect();
        for run in &runs[..3] {
            assert!(!output(run).contains(LOCKED), "{}: {run:?}", user.name);
        }
        assert!(
            output(&runs[3]).contains(LOCKED),
            "{}: {:?}",
            user.name,
            runs[3]
        );
    }
    // Nothing was written in the unenrolled user's home.
    assert!(!unenrolled.secret_path().exists());
}

#[test]
#[ignore = "needs root: make test"]
fn split_pass_right_password_and_right_code_logs_in() {
    let user = enrolled("s3cret-Pw");
    let svc = PamService::with_config(SPLIT_STACK, "");
    let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw{}\n", fresh_code()));
    assert!(run.success, "{run:?}");
    assert_eq!(output(&run).matches(FORWARD_PROMPT).count(), 1, "{run:?}");
    assert!(!output(&run).contains(PROMPT), "asked twice: {run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn split_pass_a_wrong_password_neither_counts_nor_burns_the_code() {
    let user = enrolled("s3cret-Pw");
    let svc = PamService::with_config(
        SPLIT_STACK,
        "[rate_limit]\nmax_failures = 3\ninterval = 30\n",
    );
    let before = snapshot(&user.secret_path()).ignoring_atime();
    let code = fresh_code();
    // Five wrong passwords, the last with the right code: no lock, no
    // failure, no code used, the file untouched.
    for i in 0..5 {
        let c = if i == 4 { code.clone() } else { wrong_code() };
        let run = svc.authenticate(&user.name, RHOST, &format!("guess-{i}{c}\n"));
        assert!(!run.success, "{run:?}");
        assert!(!output(&run).contains(LOCKED), "{run:?}");
    }
    assert_eq!(snapshot(&user.secret_path()).ignoring_atime(), before);
    // The owner logs in with that same code.
    let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw{code}\n"));
    assert!(run.success, "locked out or code burned: {run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn split_pass_a_guesser_with_the_password_is_rate_limited() {
    let user = enrolled("s3cret-Pw");
    let svc = PamService::with_config(
        SPLIT_STACK,
        "[rate_limit]\nmax_failures = 3\ninterval = 30\n",
    );
    for _ in 0..3 {
        let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw{}\n", wrong_code()));
        assert!(!run.success, "{run:?}");
    }
    let run = svc.authenticate(&user.name, RHOST, &format!("s3cret-Pw{}\n", fresh_code()));
    assert!(!run.success, "{run:?}");
    assert!(output(&run).contains(LOCKED), "{run:?}");
}

#[test]
#[ignore = "needs root: make test"]
fn split_pass_with_a_skip_rule_asks_only_the_password() {
    let user = enrolled("s3cret-Pw");
    let svc = PamService::with_config(
        SPLIT_STACK,
        "[[rule]]\nfrom = [\"203.0.113.0/24\"]\notp = \"skip\"\n",
    );
    let run = svc.authenticate(&user.name, RHOST, "s3cret-Pw\n");
    assert!(run.success, "{run:?}");
    assert!(output(&run).contains(UNIX_PROMPT), "{run:?}");
    assert!(!output(&run).contains(FORWARD_PROMPT), "{run:?}");
    let run = svc.authenticate(&user.name, RHOST, "wrong-Pw\n");
    assert!(!run.success, "{run:?}");
}
