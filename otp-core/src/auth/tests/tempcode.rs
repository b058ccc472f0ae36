//! The temporary code of a lost phone (`otp-enroll temp-code`) through the
//! whole login, with the time injected: it logs in while every token is
//! disabled, `uses` times until it expires (D−1 s accepted, D and D+1 s
//! refused), is counted by the rate limit like any code, leaves tokens and
//! emergency codes alone, and counts as a token only while it is live.

use super::*;
use crate::secret_file::TempCode;

/// The temporary code of these tests (what otp-enroll would have printed).
const TEMP: &str = "48151623";
/// When it expires: an hour after NOW.
const D: u64 = NOW + 3600;

fn temp_code(uses: u32) -> TempCode {
    TempCode::new(TEMP, vec![7; 16], NOW - 60, D, uses, "root".into())
}

/// alice's record: her phone (the RFC key; `extra` keys in its table),
/// one emergency code, and a temporary code of `uses` uses.
fn alice_with(w: &World, extra: &str, uses: u32) {
    let mut f = SecretFile::parse(&format!(
        "version = 2\nscratch_codes = [\"31415926\"]\n\n[[token]]\nid = \"phone\"\n\
         type = \"totp\"\nsecret = \"{KEY_B32}\"\n{extra}"
    ))
    .unwrap();
    f.temp_code = Some(temp_code(uses));
    w.enroll_with("alice", &f.to_text().unwrap());
}

/// alice's record holding the temporary code alone (no token).
fn alice_temp_only(w: &World, uses: u32) {
    let mut f = SecretFile::parse(&format!(
        "version = 2\n\n[[token]]\nid = \"x\"\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n"
    ))
    .unwrap();
    f.tokens.clear();
    f.temp_code = Some(temp_code(uses));
    w.enroll_with("alice", &f.to_text().unwrap());
}

fn login_at(w: &World, code: &str, now: u64) -> (Report, Script) {
    let mut s = Script::new(&[code]);
    let r = w.login_at("alice", None, &[], &mut s, now);
    (r, s)
}

#[test]
fn a_temp_code_logs_in_beside_a_disabled_phone_until_d_exclusive() {
    for (now, accepted) in [(D - 1, true), (D, false), (D + 1, false)] {
        let w = World::new("");
        alice_with(&w, "disabled = true\n", 1);
        let (r, s) = login_at(&w, TEMP, now);
        let why = r.reason.to_string();
        assert!(!why.contains(TEMP), "never the code: {why}");
        assert_eq!(s.seen.prompts, [CODE_PROMPT]);
        if accepted {
            assert_eq!(r.outcome, Outcome::Success, "at {now}: {r:?}");
            assert!(
                why.contains(&format!(
                    "temporary code accepted (0 uses left, expires at {D})"
                )),
                "{why}"
            );
            // Used up, and the phone there: gone with this write.
            let f = w.secret("alice");
            assert_eq!(f.temp_code, None);
            assert!(f.tokens[0].lifecycle.disabled, "the phone stays disabled");
            assert_eq!(f.scratch_codes, ["31415926"], "emergency codes alone");
        } else {
            assert_eq!(r.outcome, Outcome::AuthErr, "at {now}: {r:?}");
            assert!(
                why.contains(&format!("the temporary code, which is expired (at {D})")),
                "{why}"
            );
            // Counted as a wrong code is; removed at this write.
            let f = w.secret("alice");
            assert_eq!(f.state.failures, 1);
            assert_eq!(f.temp_code, None);
        }
    }
}

#[test]
fn one_use_then_refused() {
    let w = World::new("");
    alice_with(&w, "disabled = true\n", 1);
    let (r, _) = login_at(&w, TEMP, NOW);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let (r, s) = login_at(&w, TEMP, NOW + 1);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    // What the user saw is what a wrong code shows.
    let (_, wrong) = login_at(&w, "11112222", NOW + 2);
    assert_eq!(s.seen, wrong.seen);
}

#[test]
fn three_uses_count_down_then_refused() {
    let w = World::new("");
    alice_with(&w, "disabled = true\n", 3);
    for (i, left) in [2, 1, 0].into_iter().enumerate() {
        let (r, _) = login_at(&w, TEMP, NOW + i as u64);
        assert_eq!(r.outcome, Outcome::Success, "use {i}: {r:?}");
        assert!(
            r.reason
                .to_string()
                .contains(&format!("temporary code accepted ({left} uses left")),
            "{r:?}"
        );
        if left > 0 {
            assert_eq!(w.secret("alice").temp_code.unwrap().uses_left, left);
        }
    }
    let (r, _) = login_at(&w, TEMP, NOW + 10);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert_eq!(w.secret("alice").temp_code, None);
}

#[test]
fn a_wrong_code_is_counted_and_the_lock_holds_for_the_temp_code_too() {
    let w = World::new("[rate_limit]\nmax_failures = 3\ninterval = 30\n");
    alice_with(&w, "disabled = true\n", 2);
    for i in 0..3 {
        let (r, _) = login_at(&w, "11112222", NOW + i);
        assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    }
    let f = w.secret("alice");
    assert_eq!(f.state.failures, 3);
    assert_eq!(
        f.temp_code.unwrap().uses_left,
        2,
        "a wrong code uses nothing"
    );
    // Locked: the right temporary code is not even looked at.
    let (r, s) = login_at(&w, TEMP, NOW + 3);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(s.seen.errors[0].starts_with("Too many failed attempts"));
    assert_eq!(w.secret("alice").temp_code.unwrap().uses_left, 2);
    // Once the lock is over it works, and clears the count.
    let (r, _) = login_at(&w, TEMP, NOW + 40);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(w.secret("alice").state.failures, 0);
}

#[test]
fn beside_an_active_phone_both_log_in_and_each_keeps_its_own() {
    let w = World::new("");
    alice_with(&w, "", 2);
    let (r, _) = login_at(&w, TEMP, NOW);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let f = w.secret("alice");
    assert_eq!(f.tokens[0].state.last_step, None, "the phone untouched");
    assert_eq!(f.temp_code.unwrap().uses_left, 1);
    let (r, _) = login_at(&w, &right_code(), NOW + 1);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(w.secret("alice").temp_code.unwrap().uses_left, 1);
    // The emergency code too (the phone is active).
    let (r, _) = login_at(&w, "31415926", NOW + 2);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
}

#[test]
fn emergency_codes_stay_refused_while_the_phone_is_disabled() {
    let w = World::new("");
    alice_with(&w, "disabled = true\n", 1);
    let (r, _) = login_at(&w, "31415926", NOW);
    assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
    assert!(r
        .reason
        .to_string()
        .contains("no token of the user is active"));
    let f = w.secret("alice");
    assert_eq!(f.scratch_codes, ["31415926"], "kept");
    assert_eq!(f.temp_code.unwrap().uses_left, 1, "the temp code untouched");
}

#[test]
fn a_live_temp_code_alone_is_a_token() {
    // missing = allow must not let alice in without a code, nor enroll
    // offer her enrollment: she is prompted, and her code logs in.
    for missing in ["allow", "enroll", "deny"] {
        let w = World::new(&format!("missing = \"{missing}\"\n"));
        alice_temp_only(&w, 2);
        let (r, s) = login_at(&w, "11112222", NOW);
        assert_eq!(r.outcome, Outcome::AuthErr, "{missing}: {r:?}");
        assert_eq!(s.seen.prompts, [CODE_PROMPT], "{missing}");
        assert!(s.seen.infos.is_empty(), "{missing}: {:?}", s.seen);
        let (r, _) = login_at(&w, TEMP, NOW + 1);
        assert_eq!(r.outcome, Outcome::Success, "{missing}: {r:?}");
        // The last use of a record with no token: kept, used up.
        let (r, _) = login_at(&w, TEMP, NOW + 2);
        assert_eq!(r.outcome, Outcome::Success, "{missing}: {r:?}");
        assert_eq!(w.secret("alice").temp_code.unwrap().uses_left, 0);
    }
}

#[test]
fn a_temp_code_gone_and_no_token_is_no_token() {
    // Expired (at D, and after), or used up: what a user without a token
    // gets under each `missing`.
    for (uses, now) in [(1, D), (1, D + 1), (0, NOW)] {
        let w = World::new("missing = \"allow\"\n");
        alice_temp_only(&w, uses);
        let (r, s) = login_at(&w, TEMP, now);
        assert_eq!(r.outcome, Outcome::Success, "{uses} at {now}: {r:?}");
        assert!(s.seen.prompts.is_empty(), "{:?}", s.seen);
        assert_eq!(s.seen.infos, [MSG_NOT_ENROLLED]);
        assert!(matches!(r.reason, Reason::NotEnrolledAllowed(_)), "{r:?}");

        let w = World::new("missing = \"deny\"\n");
        alice_temp_only(&w, uses);
        let (r, _) = login_at(&w, TEMP, now);
        assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
        assert!(
            r.reason.to_string().starts_with("no token, missing = deny"),
            "{r:?}"
        );

        // enroll: offered enrollment, and the new token takes the place of
        // the record that held only the dead code.
        let w = World::new("missing = \"enroll\"\n");
        alice_temp_only(&w, uses);
        let mut s = Script::new(&[]);
        let r = w.login_at("alice", None, &[], &mut s, now);
        assert!(
            matches!(r.reason, Reason::Enroll(_)),
            "{uses} at {now}: {r:?} {:?}",
            s.seen
        );
    }
}

#[test]
fn forward_pass_splits_the_temp_code_off_the_password() {
    let w = World::new("");
    alice_with(&w, "disabled = true\n", 1);
    let typed = format!("hunter2{TEMP}");
    let mut s = Script::new(&[&typed]);
    let r = w.login_at("alice", None, &["forward_pass"], &mut s, NOW);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(s.seen.authtok.as_deref(), Some("hunter2"));
}
