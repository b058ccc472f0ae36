//! `grace_period` in the fleet database (issue 31, item 6; schema version
//! 3), against a private PostgreSQL the test starts (`testkit::pg`), with
//! the real module through pamtester:
//! - the database decides: `login_info_at` grants grace only for the same
//!   address and the same PAM service, for the shorter of the host's
//!   period and `settings.grace_period`, at D−1 s, D and D+1 s of its
//!   end; an entry without a service (written before version 3) grants
//!   none, and version 2's `login_info` gives a version 2 host no entries;
//! - one host with two PAM service files: a code accepted through one
//!   does not spare the code for the other; each entry names its service
//!   and the host role that wrote it;
//! - a host asking for a longer period than the database's gets the
//!   database's; a shorter one keeps its own.

use testkit::harness::hotp_codes;
use testkit::pg::{fleet_config, Postgres};
use testkit::{require_root, PamRun, PamService, TestUser, KEY_HEX, OTP_ONLY, PROMPT};

const A: &str = "203.0.113.7";
const TIMEOUT: u64 = 5;

/// A PAM service of host role `role` with `extra` config keys.
fn service(pg: &Postgres, role: &str, extra: &str) -> PamService {
    let pam = PamService::with_config(OTP_ONLY, "");
    let conninfo = pg.host_conninfo(role, &pam.dir, TIMEOUT);
    let admin = pg.admin_conninfo("ops", &pam.dir, TIMEOUT);
    pam.write_config(&fleet_config(&conninfo, &admin, extra));
    pam
}

fn enroll(pg: &Postgres, user: &str) {
    pg.psql_ok(&format!(
        "SELECT pam_otp.enroll('{user}', '{{\"tokens\": [{{\"id\": \"OATH1\", \"type\": \"hotp\", \"secret\": \"{KEY_HEX}\"}}]}}'::jsonb)"
    ));
}

fn with_code(pam: &PamService, user: &str, code: &str) {
    let run = pam.authenticate(user, Some(A), &format!("{code}\n"));
    assert!(run.success, "{run:#?}");
    assert!(run.stderr.contains(PROMPT), "{run:#?}");
}

/// A login from [`A`] with nothing to answer: let in without a code?
fn spared(pam: &PamService, user: &str) -> bool {
    let run: PamRun = pam.authenticate(user, Some(A), "");
    assert_eq!(
        run.success,
        !run.stderr.contains(PROMPT),
        "let in exactly when not asked: {run:#?}"
    );
    run.success
}

/// Moves every grace entry of `user` `secs` seconds into the past, as if
/// that long had passed (the database's clock is not the test's to set).
fn age(pg: &Postgres, user: &str, secs: u64) {
    pg.psql_ok(&format!(
        "UPDATE pam_otp.users SET grace = (SELECT jsonb_agg(jsonb_set(g, '{{at}}', to_jsonb((g->>'at')::bigint - {secs}))) FROM jsonb_array_elements(grace) g) WHERE name = '{user}'"
    ));
}

#[test]
#[ignore = "needs root: make test"]
fn the_database_decides_grace_per_service_with_its_own_period() {
    require_root();
    let pg = Postgres::with_schema();
    pg.psql_ok("UPDATE pam_otp.settings SET grace_period = 100");
    enroll(&pg, "carol");
    let d: u64 = 1_700_000_000;
    pg.psql_ok(&format!(
        "UPDATE pam_otp.users SET grace = '[{{\"from\": \"{A}\", \"at\": {d}, \"service\": \"sshd\", \"by\": \"web1\"}}, {{\"from\": \"198.51.100.1\", \"at\": {d}}}]' WHERE name = 'carol'"
    ));
    let at = |service: &str, rhost: &str, period: u64, now: u64| {
        pg.psql_ok(&format!(
            "SELECT coalesce(grace_at::text, '-') FROM pam_otp.login_info_at('carol', '{service}', '{rhost}', {period}, {now})"
        ))
    };
    let granted = d.to_string();
    // The host asks for 300, the database allows 100: its end is d + 100.
    for (now, want) in [(d + 99, granted.as_str()), (d + 100, "-"), (d + 101, "-")] {
        assert_eq!(at("sshd", A, 300, now), want, "{now}");
        assert_eq!(at("openvpn", A, 300, now), "-", "another service, {now}");
    }
    // A host asking for less keeps its own: 50.
    for (now, want) in [(d + 49, granted.as_str()), (d + 50, "-"), (d + 51, "-")] {
        assert_eq!(at("sshd", A, 50, now), want, "{now}");
    }
    // Not from the future; not for another address; none without a
    // service (written before version 3), none for a host asking none.
    assert_eq!(at("sshd", A, 300, d - 1), "-");
    assert_eq!(at("sshd", "203.0.113.8", 300, d + 1), "-");
    assert_eq!(at("sshd", "198.51.100.1", 300, d + 1), "-");
    assert_eq!(at("sshd", A, 0, d + 1), "-");
    // Version 2's login_info: no entries for a host that would apply its
    // own period to any service's.
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT presence || ' ' || grace::text FROM pam_otp.login_info_at('carol', {d})"
        )),
        "tokens []"
    );
    // The database at 0: no grace at all, whatever a host asks.
    pg.psql_ok("UPDATE pam_otp.settings SET grace_period = 0");
    assert_eq!(at("sshd", A, 300, d + 1), "-");
}

#[test]
#[ignore = "needs root: make test"]
fn a_code_through_one_service_does_not_spare_another_and_the_host_cannot_lengthen_it() {
    require_root();
    let pg = Postgres::with_schema();
    pg.psql_ok("UPDATE pam_otp.settings SET grace_period = 60");
    // One host (role web1), two PAM service files, each asking for 300 s.
    let vpn = service(&pg, "web1", "grace_period = 300\n");
    let ssh = service(&pg, "web1", "grace_period = 300\n");
    let user = TestUser::new();
    let u = user.name.as_str();
    enroll(&pg, u);
    let codes = hotp_codes(KEY_HEX, 0, 4);

    with_code(&vpn, u, &codes[0]);
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT string_agg((g->>'from') || ' ' || (g->>'service') || ' ' || (g->>'by'), ',') FROM pam_otp.users, jsonb_array_elements(grace) g WHERE name = '{u}'"
        )),
        format!("{A} {} web1", vpn.name),
        "the entry names its service and the host role"
    );
    assert!(spared(&vpn, u), "the same service");
    assert!(!spared(&ssh, u), "another service from the same address");

    // The host asks 300, the database allows 60: 50 s on, spared; 60 s
    // on, a code. (Entries aged, not slept on; the few real seconds a
    // login takes stay inside the 10 s margin.)
    age(&pg, u, 50);
    assert!(spared(&vpn, u), "50 s after the code");
    age(&pg, u, 10);
    assert!(
        !spared(&vpn, u),
        "60 s after the code: the database's period"
    );

    // A code through the second service spares it, not the first.
    with_code(&ssh, u, &codes[1]);
    assert!(spared(&ssh, u));
    assert!(!spared(&vpn, u));

    // A host asking for less than the database keeps its own period.
    let short = service(&pg, "web2", "grace_period = 30\n");
    with_code(&short, u, &codes[2]);
    age(&pg, u, 20);
    assert!(spared(&short, u), "20 s");
    age(&pg, u, 10);
    assert!(!spared(&short, u), "30 s: the host's own, shorter");
}
