//! A fleet: four hosts, each a real sshd with the module and its own host
//! identity (its login role, member of pam_otp_host, and its client
//! certificate), against one private PostgreSQL; the real `ssh` client
//! logs in. A user enrolled at login on one host (public key first, then
//! the QR code read by the "phone") logs in on another with the next
//! code; one right code typed on all four at the same moment lets exactly
//! one login in, round after round.
//!
//! The hosts share loopback: each is its own sshd, port, PAM service,
//! config and database identity, which is what the store sees of a host.
//! (Separate network namespaces would change the source address sshd
//! reports, not what the database is asked.)

use std::path::PathBuf;

use testkit::harness::RootDir;
use testkit::pg::{fleet_config, Postgres};
use testkit::phone::{at, secret_of, ssh_line, with_phone, User, CONFIRM};
use testkit::{authorize_key, now, oathtool_totp, Sshd, SshdSetup, TestUser, PROMPT};

/// A host of the fleet: its sshd, and the directory of its certificate.
struct Host {
    sshd: Sshd,
    _certs: RootDir,
}

fn host(pg: &Postgres, name: &str) -> Host {
    let certs = RootDir::new(&format!("fleet-{name}"), 0o700);
    let conninfo = pg.host_conninfo(name, &certs.path, 3);
    let admin = pg.admin_conninfo("ops", &certs.path, 3);
    let config = fleet_config(&conninfo, &admin, "missing = \"enroll\"\n");
    let sshd = Sshd::start(&SshdSetup {
        pam_auth: "auth required {module} config={config}\n",
        otp_config: &config,
        authentication_methods: "publickey,keyboard-interactive",
        sshd_extra: "",
    });
    Host {
        sshd,
        _certs: certs,
    }
}

fn fleet(pg: &Postgres) -> Vec<Host> {
    (1..=4).map(|i| host(pg, &format!("host{i}"))).collect()
}

/// A user whose key every host accepts, enrolled at a login on `first`;
/// the key and the token's base32 secret.
fn enrolled_user(first: &Host) -> (TestUser, PathBuf, String) {
    let user = TestUser::new();
    let (key, public) = first.sshd.client_key();
    authorize_key(&user, &public);
    let line = ssh_line(
        &first.sshd,
        "ssh",
        &key,
        &format!("-T {} echo enrolled-ok", at(&user)),
    );
    let (run, phone) = with_phone(&line, User::default());
    assert!(
        run.success && run.output.contains("enrolled-ok"),
        "{run:#?}\n{}",
        first.sshd.log()
    );
    let secret = secret_of(phone.scanned.last().expect("a QR code was scanned"));
    (user, key, secret)
}

#[test]
fn enrolled_on_one_host_a_user_logs_in_on_another_with_the_next_code() {
    let pg = Postgres::with_schema();
    let hosts = fleet(&pg);
    let (user, key, secret) = enrolled_user(&hosts[0]);
    // The token is in the database, not on the host.
    assert!(!user.secret_path().exists());
    assert_eq!(
        pg.psql_ok(&format!(
            "SELECT count(*) FROM pam_otp.tokens WHERE username = '{}'",
            user.name
        )),
        "1"
    );
    let next = oathtool_totp(&secret, Some(now() + 30), &[]);
    let run = hosts[1]
        .sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &next)
        .run();
    assert!(run.success, "{run:#?}\n{}", hosts[1].sshd.log());
    assert_eq!(run.asked(PROMPT), 1);
    assert_eq!(run.asked(CONFIRM), 0, "not enrolled a second time");
    // Used on host 2: refused on host 3.
    let again = hosts[2]
        .sshd
        .ssh(&user.name)
        .identity(&key)
        .answer(PROMPT, &next)
        .run();
    assert!(!again.success, "{again:#?}");
}

#[test]
fn one_right_code_on_four_hosts_at_once_lets_exactly_one_login_in() {
    let pg = Postgres::with_schema();
    let hosts = fleet(&pg);
    let (user, key, secret) = enrolled_user(&hosts[0]);
    // The steps after the one the enrollment's confirmation used (the
    // first moves the learned drift by one, so the second is in the
    // window too).
    let used: u64 = pg
        .psql_ok(&format!(
            "SELECT last_step FROM pam_otp.tokens WHERE username = '{}'",
            user.name
        ))
        .parse()
        .expect("the confirmation's step is recorded");
    for round in 1..=2u64 {
        let code = oathtool_totp(&secret, Some((used + round) * 30), &[]);
        let runs: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|h| {
                    let (user, key, code) = (&user.name, &key, &code);
                    s.spawn(move || h.sshd.ssh(user).identity(key).answer(PROMPT, code).run())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = runs.iter().filter(|r| r.success).count();
        assert_eq!(won, 1, "round {round}: {runs:#?}");
        // The three losers counted as failures: an admin's unlock.
        pg.psql_ok(&format!(
            "UPDATE pam_otp.users SET failures = 0, last_failure = 0 WHERE name = '{}'",
            user.name
        ));
    }
}
