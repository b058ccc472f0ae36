//! The hosts of a fleet for the tests of the `postgresql` store through
//! the real module and the real otp-enroll (tests/pg_tempcode.rs,
//! pg_lifecycle.rs, pg_exempt.rs): each host a private PAM service whose
//! config names one private database ([`crate::pg::Postgres`]) with its
//! own login role and certificate, as the admin guide's fleet set-up does.
//! One copy here, so that every such test sets a host up the same way
//! and a change to the fleet config is made once.
//!
//! otp-enroll on a host is [`crate::otp_enroll`], a login with the
//! caller's `TZ` is [`crate::syslog::logged_run_in_zone`].

use crate::pg::{fleet_config, Postgres};
use crate::PamService;

/// The connect_timeout the hosts' conninfo sets.
pub const TIMEOUT: u64 = 5;

/// One host: a private PAM service with `stack` (see
/// [`PamService::named`]) whose config names the database, with its own
/// login role `role` and certificate, the admin role `ops`, and `extra`
/// config lines. The rate limit is the least of the host's and the
/// database's: the tests that want room for refusals raise the
/// database's, and each host leaves it to the database (1000).
pub fn host(pg: &Postgres, role: &str, stack: &str, extra: &str) -> PamService {
    let pam = PamService::with_config(stack, "");
    let conninfo = pg.host_conninfo(role, &pam.dir, TIMEOUT);
    let admin = pg.admin_conninfo("ops", &pam.dir, TIMEOUT);
    pam.write_config(&fleet_config(
        &conninfo,
        &admin,
        &format!("{extra}[rate_limit]\nmax_failures = 1000\n"),
    ));
    pam
}

/// The database's clock, Unix seconds: the one that decides a code's or
/// an exemption's end, which the tests wait out.
pub fn db_now(pg: &Postgres) -> u64 {
    pg.psql_ok("SELECT extract(epoch FROM clock_timestamp())::bigint")
        .parse()
        .unwrap()
}
