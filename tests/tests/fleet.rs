//! The fleet (issue 15): several hosts, each a network namespace with its
//! own sshd, pam_otp config and host identity, logging in users against
//! one PostgreSQL ([`testkit::netns`], `testkit::pg`).

use testkit::harness::hotp_codes;
use testkit::netns::{netns_exists, Segment};
use testkit::{hotp_secret, KEY_HEX};
use testkit::{Placement, Sshd, SshdSetup, TestUser, OTP_ONLY, PROMPT};

const HOSTS: usize = 4;

/// The plumbing with the `home` store: four sshds, one per namespace, each
/// reached across the bridge from the client namespace.
#[test]
fn four_hosts_each_take_a_login_across_the_bridge() {
    let net = Segment::new(HOSTS);
    let names = net.namespaces();
    let user = TestUser::new();
    user.write_secret(&hotp_secret(0));
    let codes = hotp_codes(KEY_HEX, 0, HOSTS as u64);
    let client = net.client_netns();
    {
        let sshds: Vec<Sshd> = net
            .hosts()
            .iter()
            .map(|h| {
                Sshd::start_in(
                    &SshdSetup {
                        pam_auth: OTP_ONLY,
                        otp_config: "[rate_limit]\nmax_failures = 0\n",
                        authentication_methods: "keyboard-interactive",
                        sshd_extra: "",
                    },
                    &Placement {
                        netns: &h.netns,
                        addr: &h.addr,
                        client_netns: &client,
                    },
                )
            })
            .collect();
        for (i, sshd) in sshds.iter().enumerate() {
            let run = sshd.ssh(&user.name).answer(PROMPT, &codes[i]).run();
            assert!(run.success, "host {}: {run:#?}\n{}", i + 1, sshd.log());
            assert!(
                sshd.log()
                    .contains(&format!("from {} port", net.client_addr())),
                "the login came across the bridge: {}",
                sshd.log()
            );
        }
        eprintln!("{:?}", sshds[0].syslog());
    }
    drop(net);
    for n in names {
        assert!(!netns_exists(&n), "{n} left behind");
    }
}
