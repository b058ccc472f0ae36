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
    assert!(output(&ghost).contains(USER_UNKNOWN), "{ghost:?}");
    assert!(output(&ghost).contains(PROMPT), "not prompted: {ghost:?}");
    assert_eq!(conversation(&real), conversation(&ghost));
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
