//! Disabled tokens and validity dates through the whole login, with the
//! time injected: a token outside its dates or disabled is refused like a
//! wrong code (the user sees the same), the log says why, and a user whose
//! every token is so is refused, never treated as "without a token".

use super::*;

/// alice's one token (the RFC key), version 2, with `extra` keys in its
/// `[[token]]` table.
fn enroll_v2(w: &World, extra: &str) {
    w.enroll_with(
        "alice",
        &format!(
            "version = 2\nscratch_codes = [\"31415926\"]\n\n[[token]]\nid = \"phone\"\n\
             type = \"totp\"\nsecret = \"{KEY_B32}\"\n{extra}"
        ),
    );
}

fn login_at(w: &World, code: &str, now: u64) -> (Report, Script) {
    let mut s = Script::new(&[code]);
    let r = w.login_at("alice", None, &[], &mut s, now);
    (r, s)
}

fn code_at_time(now: u64) -> String {
    code_at(now / 30)
}

#[test]
fn a_disabled_token_is_refused_like_a_wrong_code_and_counted() {
    for missing in ["allow", "enroll", "deny"] {
        let w = World::new(&format!("missing = \"{missing}\"\n"));
        enroll_v2(&w, "disabled = true\n");
        let (r, s) = login_at(&w, &right_code(), NOW);
        assert_eq!(r.outcome, Outcome::AuthErr, "{missing}: {r:?}");
        let why = r.reason.to_string();
        assert!(why.contains("token phone, which is disabled"), "{why}");
        assert!(!why.contains(&right_code()), "never the code: {why}");
        // What the user saw is what a wrong code shows: one prompt, no
        // message, no offer to enroll.
        let (_, wrong) = login_at(&w, &wrong_code(), NOW + 60);
        assert_eq!(s.seen, wrong.seen, "{missing}");
        assert_eq!(s.seen.prompts, [CODE_PROMPT]);
        let f = w.secret("alice");
        assert_eq!(f.state.failures, 2, "it counts for the rate limit");
        assert_eq!(f.tokens[0].state.last_step, None, "its state did not move");
        assert!(f.tokens[0].lifecycle.disabled);
        // An emergency code does not stand in for a disabled only token.
        let (r, _) = login_at(&w, "31415926", NOW + 90);
        assert_eq!(r.outcome, Outcome::AuthErr, "{r:?}");
        assert!(r
            .reason
            .to_string()
            .contains("no token of the user is active"));
        assert_eq!(w.secret("alice").scratch_codes, ["31415926"], "kept");
    }
}

#[test]
fn every_token_disabled_is_not_no_token() {
    // Under missing = "allow" a user without a token is let in; under
    // "enroll" offered enrollment. A user whose every token is disabled
    // or expired is neither: prompted and refused.
    for (missing, extra) in [
        ("allow", "disabled = true\n"),
        ("enroll", "disabled = true\n"),
        ("allow", &*format!("expires = {NOW}\n")),
        ("enroll", &*format!("not_before = {}\n", NOW + 1)),
    ] {
        let w = World::new(&format!("missing = \"{missing}\"\n"));
        enroll_v2(&w, extra);
        let mut s = Script::new(&[&right_code()]);
        let r = w.login("alice", &[], &mut s);
        assert_eq!(r.outcome, Outcome::AuthErr, "{missing} {extra}: {r:?}");
        assert_eq!(s.seen.prompts, [CODE_PROMPT], "{missing} {extra}");
        assert!(
            s.seen.infos.is_empty(),
            "no enrollment offered: {:?}",
            s.seen
        );
    }
}

#[test]
fn not_before_and_expires_at_d_minus_1_d_and_d_plus_1() {
    // D is a multiple of 30 plus 15, so D-1, D and D+1 share a TOTP step
    // and each login below uses a step of its own.
    let d = (NOW / 30) * 30 + 15;
    let cases = [
        ("not_before", d - 1, Some("not yet valid")),
        ("not_before", d, None),
        ("not_before", d + 1, None),
        ("expires", d - 1, None),
        ("expires", d, Some("expired")),
        ("expires", d + 1, Some("expired")),
    ];
    for (key, now, refused) in cases {
        let w = World::new("");
        enroll_v2(&w, &format!("{key} = {d}\n"));
        let (r, _) = login_at(&w, &code_at_time(now), now);
        match refused {
            None => assert_eq!(r.outcome, Outcome::Success, "{key} {d} at {now}: {r:?}"),
            Some(why) => {
                assert_eq!(r.outcome, Outcome::AuthErr, "{key} {d} at {now}: {r:?}");
                assert!(r.reason.to_string().contains(why), "{r:?}");
            }
        }
    }
}

#[test]
fn an_inactive_token_does_not_hide_an_active_one() {
    let w = World::new("");
    w.enroll_with(
        "alice",
        &format!(
            "version = 2\n\n[[token]]\nid = \"old\"\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n\
             disabled = true\n\n[[token]]\nid = \"new\"\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n"
        ),
    );
    let (r, _) = login_at(&w, &right_code(), NOW);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(r.reason.to_string().contains("token new"), "{r:?}");
}
