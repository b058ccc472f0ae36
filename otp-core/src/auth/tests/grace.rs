//! `grace_period` per PAM service, through the whole login with the time
//! injected (file store): a code accepted through one service spares the
//! code for that service only, until the period's end (D−1 s, D, D+1 s);
//! an entry written before entries named their service counts as expired.

use super::*;

const FROM: &str = "203.0.113.7";

/// alice's code accepted through `service` from [`FROM`] at [`NOW`].
fn code_through(w: &World, service: &str) {
    let mut s = Script::new(&[&right_code()]);
    let r = w.login_through(service, "alice", Some(FROM), &[], &mut s, NOW);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
}

/// A login through `service` from `from` at `now` with nothing to answer:
/// whether it was let in without a code (by grace) or asked for one.
fn spared(w: &World, service: &str, from: &str, now: u64) -> bool {
    let mut s = Script::new(&[]);
    let r = w.login_through(service, "alice", Some(from), &[], &mut s, now);
    match r.outcome {
        Outcome::Success => {
            assert!(s.seen.prompts.is_empty(), "{:?}", s.seen);
            assert!(matches!(r.reason, Reason::Grace { .. }), "{r:?}");
            true
        }
        _ => {
            assert_eq!(s.seen.prompts, [CODE_PROMPT], "{r:?}");
            false
        }
    }
}

#[test]
fn grace_holds_for_the_same_service_only_until_the_periods_end() {
    let w = World::new("grace_period = 300\n[rate_limit]\nmax_failures = 0\n");
    w.enroll("alice", "");
    code_through(&w, "openvpn");
    let entry = &w.secret("alice").state.grace[0];
    assert_eq!(
        (entry.from.as_str(), entry.at, entry.service.as_deref()),
        (FROM, NOW, Some("openvpn"))
    );
    // D is the period's end: NOW + 300.
    let d = NOW + 300;
    for (now, want) in [(d - 1, true), (d, false), (d + 1, false)] {
        assert_eq!(spared(&w, "openvpn", FROM, now), want, "openvpn at {now}");
        // Another service from the same address: a code, whenever.
        assert!(!spared(&w, "sshd", FROM, now), "sshd at {now}");
    }
    // Another address through the same service: a code.
    assert!(!spared(&w, "openvpn", "203.0.113.8", NOW + 1));
}

#[test]
fn a_grace_entry_without_a_service_counts_as_expired() {
    let w = World::new("grace_period = 300\n[rate_limit]\nmax_failures = 0\n");
    // As a module before grace per service left it: a code from FROM a
    // second ago.
    w.enroll_with(
        "alice",
        &format!(
            "version = 2\n\n[state]\nfailures = 0\nlast_failure = 0\n\
             grace = [{{ from = \"{FROM}\", at = {} }}]\n\n\
             [[token]]\nid = \"phone\"\ntype = \"totp\"\nsecret = \"{KEY_B32}\"\n",
            NOW - 1
        ),
    );
    for service in ["sshd", "openvpn"] {
        assert!(!spared(&w, service, FROM, NOW), "{service}");
    }
    // The next code drops it and keeps its own.
    code_through(&w, "sshd");
    let grace = w.secret("alice").state.grace;
    assert_eq!(grace.len(), 1, "{grace:?}");
    assert_eq!(grace[0].service.as_deref(), Some("sshd"));
    assert!(spared(&w, "sshd", FROM, NOW + 1));
}
