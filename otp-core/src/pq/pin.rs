//! Every libpq setting from the config, none from the environment.
//!
//! libpq fills a keyword the connection string leaves out from an
//! environment variable (`PGHOSTADDR`, `PGSSLROOTCERT`, ...) or from the
//! home directory (`~/.pgpass`, `~/.postgresql/root.crt`); under `su` both
//! are the caller's. The helper runs with an empty environment, and on top
//! of that [`pin`] gives every keyword that has an environment variable a
//! value of the config's (the connection string, or the `service=`
//! section of the one trusted service file), or a fixed one from
//! [`RULES`]. A keyword with a variable and no rule (a newer libpq's) is
//! refused: nobody decided what it should be. Nothing here reads the
//! environment, and nothing comes from `PQconndefaults()`.
//!
//! The connection must also prove whom it talks to: a TCP host (loopback
//! included: a local user can listen on a port the database left free)
//! needs `sslmode=verify-full` and an explicit `sslrootcert`; a Unix
//! socket needs `requirepeer=` (the server process's account: Debian's
//! `/var/run/postgresql` is group-writable, so the directory proves
//! nothing). `gssencmode` is `disable`.

use std::fmt;

/// One keyword as libpq's `PQconninfoParse` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub keyword: String,
    /// The environment variable libpq reads for it when it has no value.
    pub envvar: Option<String>,
    /// The value the connection string gives.
    pub val: Option<String>,
}

/// A path that is not there: a file keyword pinned to it means "no such
/// file" (libpq skips a client certificate, key, CRL or root certificate
/// it cannot find) instead of "the one in the home directory", which an
/// empty value would mean. Debian's conventional home of nobody; root's.
pub const NO_FILE: &str = "/nonexistent";

/// Debian's libpq's socket directory, when the config names no host.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Seconds to wait for a connection (per host) and for each answer, when
/// the config sets no `connect_timeout`: libpq's own default is to wait
/// forever, which would hold a login (and an sshd slot) hostage.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 5;

/// What a keyword gets when the config gives it no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// This value.
    Default(&'static str),
    /// Stays unset: unset means "none" (no password, no extra options),
    /// which no value can say, and the helper's environment is empty.
    Unset,
    /// Always this value; the config may only repeat it.
    Fixed(&'static str),
    /// The name of the account the helper runs as (libpq's own default,
    /// taken here without `PGUSER`).
    OsUser,
    /// The `user` in effect (libpq's default for `dbname`).
    SameAsUser,
    /// `service`: resolved here from the trusted service file, never
    /// passed to libpq (which would look in `PGSERVICEFILE`, `~` and
    /// `PGSYSCONFDIR`).
    Service,
    /// `host`: the socket directory unless `hostaddr` is given.
    Host,
}

/// Every environment-backed keyword of libpq 15 to 18 and its rule (the
/// newer ones matter: PGDG's repository ships libpq5 16 to 18 to Debian 12
/// hosts). A keyword libpq lists with a variable that is not here is
/// refused, so a libpq newer than this table fails closed, not open.
const RULES: &[(&str, Rule)] = &[
    ("service", Rule::Service),
    ("servicefile", Rule::Default(NO_FILE)),
    ("user", Rule::OsUser),
    ("password", Rule::Unset),
    ("passfile", Rule::Default(NO_FILE)),
    ("channel_binding", Rule::Default("prefer")),
    ("connect_timeout", Rule::Default("5")),
    ("dbname", Rule::SameAsUser),
    ("host", Rule::Host),
    ("hostaddr", Rule::Unset),
    ("port", Rule::Default("5432")),
    ("client_encoding", Rule::Default("UTF8")),
    ("options", Rule::Unset),
    ("application_name", Rule::Default("pam_otp")),
    ("sslmode", Rule::Default("verify-full")),
    ("sslnegotiation", Rule::Default("postgres")),
    ("sslcompression", Rule::Default("0")),
    ("sslcert", Rule::Default(NO_FILE)),
    ("sslkey", Rule::Default(NO_FILE)),
    ("sslcertmode", Rule::Default("allow")),
    ("sslrootcert", Rule::Default(NO_FILE)),
    ("sslcrl", Rule::Default(NO_FILE)),
    ("sslcrldir", Rule::Unset),
    ("sslsni", Rule::Default("1")),
    ("requirepeer", Rule::Unset),
    ("require_auth", Rule::Unset),
    ("ssl_min_protocol_version", Rule::Default("TLSv1.2")),
    ("ssl_max_protocol_version", Rule::Unset),
    ("min_protocol_version", Rule::Unset),
    ("max_protocol_version", Rule::Unset),
    ("gssencmode", Rule::Fixed("disable")),
    ("krbsrvname", Rule::Default("postgres")),
    ("gsslib", Rule::Unset),
    // libpq 16: forwarding the user's Kerberos credentials to the server.
    // Never: GSSAPI is not how pam_otp authenticates.
    ("gssdelegation", Rule::Fixed("0")),
    ("target_session_attrs", Rule::Default("any")),
    ("load_balance_hosts", Rule::Default("disable")),
];

/// The connection to make: every keyword and its value, how many hosts
/// libpq may try, and the seconds allowed for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    pub params: Vec<(String, String)>,
    pub hosts: u64,
    pub timeout: u64,
}

impl Pinned {
    /// The value given to `keyword`.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }
}

/// Why the settings are refused, for the log and the admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

/// Fills every keyword of `parsed` (libpq's parse of the config's
/// connection string): the string's value, else the `service=` section of
/// `service_file` (read only when a service is named, by `read_service`,
/// which must trust it as the config is trusted), else the rule's.
/// `os_user` is the name of the account the connection is made from.
pub fn pin(
    parsed: &[Parsed],
    service_file: &str,
    read_service: &mut dyn FnMut(&str) -> Result<String, String>,
    os_user: &str,
) -> Result<Pinned, Refusal> {
    let mut given: Vec<(String, String)> = parsed
        .iter()
        .filter_map(|p| Some((p.keyword.clone(), p.val.clone()?)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let known = |k: &str| parsed.iter().any(|p| p.keyword == k);
    if let Some(name) = lookup(&given, "service").map(str::to_string) {
        let text = read_service(service_file).or_else(|why| {
            refuse(format!(
                "service [{name}]: service file {service_file}: {why} (service_file in [postgresql] names the file)"
            ))
        })?;
        let section = service_section(&text, &name)
            .map_err(|why| Refusal(format!("service file {service_file}: {why}")))?
            .ok_or_else(|| {
                Refusal(format!(
                    "service file {service_file}: no service [{name}] (service_file in [postgresql] names the file)"
                ))
            })?;
        for (k, v) in section {
            if !known(&k) {
                return refuse(format!(
                    "service file {service_file}: [{name}]: {k:?} is not a libpq keyword"
                ));
            }
            if k == "service" || k == "servicefile" {
                return refuse(format!(
                    "service file {service_file}: [{name}]: {k} inside a service is not supported"
                ));
            }
            // The connection string's own values win, as in libpq.
            if lookup(&given, &k).is_none() && !v.is_empty() {
                given.push((k, v));
            }
        }
    }
    if let Some(v) = lookup(&given, "servicefile") {
        if v != NO_FILE {
            return refuse("servicefile is not taken from the connection string: service_file in [postgresql] names the one service file");
        }
    }
    let user = lookup(&given, "user").unwrap_or(os_user).to_string();
    let mut params = Vec::new();
    for p in parsed {
        let value = lookup(&given, &p.keyword).map(str::to_string);
        if p.envvar.is_none() {
            // No environment variable behind it: the string's value or
            // libpq's built-in default, neither of them the caller's.
            if let Some(v) = value {
                params.push((p.keyword.clone(), v));
            }
            continue;
        }
        let Some(rule) = RULES.iter().find(|(k, _)| *k == p.keyword).map(|(_, r)| *r) else {
            return refuse(format!(
                "the PostgreSQL client library has a setting pam_otp has no rule for ({}, read from {} when unset): not connecting until pam_otp knows it",
                p.keyword,
                p.envvar.as_deref().unwrap_or("?")
            ));
        };
        let chosen = match (rule, value) {
            (Rule::Service, _) => None,
            (Rule::Fixed(fixed), Some(v)) if v != fixed => {
                return refuse(format!("{} must be {fixed} (got {v:?})", p.keyword))
            }
            (Rule::Fixed(fixed), _) => Some(fixed.to_string()),
            (_, Some(v)) => Some(v),
            (Rule::Default(d), None) => Some(d.to_string()),
            (Rule::Unset, None) => None,
            (Rule::OsUser, None) => Some(os_user.to_string()),
            (Rule::SameAsUser, None) => Some(user.clone()),
            (Rule::Host, None) => match lookup(&given, "hostaddr") {
                Some(_) => None,
                None => Some(DEFAULT_SOCKET_DIR.to_string()),
            },
        };
        if let Some(v) = chosen {
            params.push((p.keyword.clone(), v));
        }
    }
    let pinned = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let hosts = split(pinned("host"));
    let addrs = split(pinned("hostaddr"));
    let count = hosts.len().max(addrs.len()).max(1);
    let mut tcp = false;
    let mut unix = false;
    for i in 0..count {
        let addr = addrs.get(i).copied().unwrap_or("");
        let host = hosts.get(i).copied().unwrap_or("");
        if !addr.is_empty() || !(host.is_empty() || host.starts_with('/') || host.starts_with('@'))
        {
            tcp = true;
        } else {
            unix = true;
        }
    }
    if tcp {
        if pinned("sslmode") != Some("verify-full") {
            return refuse("a TCP host (loopback included) needs sslmode=verify-full: anyone on the machine can listen on a port the database left free");
        }
        if lookup(&given, "sslrootcert").is_none() {
            return refuse("a TCP host needs an explicit sslrootcert= (the CA that signed the database's certificate)");
        }
    }
    if unix && lookup(&given, "requirepeer").is_none() {
        return refuse("a Unix socket needs requirepeer= the database's account (e.g. requirepeer=postgres): the socket directory does not prove who listens");
    }
    let timeout = match pinned("connect_timeout").map(|t| t.trim().parse::<u64>()) {
        Some(Ok(0)) | Some(Err(_)) => {
            return refuse("connect_timeout must be a number of seconds above 0 (0 waits forever)")
        }
        Some(Ok(t)) => t.max(2),
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    Ok(Pinned {
        params,
        hosts: u64::try_from(count).unwrap_or(u64::MAX),
        timeout,
    })
}

fn lookup<'a>(given: &'a [(String, String)], keyword: &str) -> Option<&'a str> {
    given
        .iter()
        .find(|(k, _)| k == keyword)
        .map(|(_, v)| v.as_str())
}

fn split(list: Option<&str>) -> Vec<&str> {
    list.map(|l| l.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

/// The `key=value` lines of section `[name]` of a libpq service file
/// (`#` comments, blank lines; the value is the rest of the line).
fn service_section(text: &str, name: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let mut current: Option<&str> = None;
    let mut found = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let section = section
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: a section header without ]", n + 1))?;
            current = Some(section);
            if section == name && found.is_none() {
                found = Some(Vec::new());
            }
            continue;
        }
        if line.starts_with("ldap") {
            return Err(format!(
                "line {}: LDAP service lookups are not supported",
                n + 1
            ));
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: not key=value", n + 1));
        };
        if current == Some(name) {
            if let Some(entries) = found.as_mut() {
                entries.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libpq 15's keywords and variables (PQconninfoParse on Debian 12).
    const LIBPQ15: &[(&str, Option<&str>)] = &[
        ("service", Some("PGSERVICE")),
        ("user", Some("PGUSER")),
        ("password", Some("PGPASSWORD")),
        ("passfile", Some("PGPASSFILE")),
        ("channel_binding", Some("PGCHANNELBINDING")),
        ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
        ("dbname", Some("PGDATABASE")),
        ("host", Some("PGHOST")),
        ("hostaddr", Some("PGHOSTADDR")),
        ("port", Some("PGPORT")),
        ("client_encoding", Some("PGCLIENTENCODING")),
        ("options", Some("PGOPTIONS")),
        ("application_name", Some("PGAPPNAME")),
        ("fallback_application_name", None),
        ("keepalives", None),
        ("sslmode", Some("PGSSLMODE")),
        ("sslcert", Some("PGSSLCERT")),
        ("sslkey", Some("PGSSLKEY")),
        ("sslpassword", None),
        ("sslrootcert", Some("PGSSLROOTCERT")),
        ("sslcrl", Some("PGSSLCRL")),
        ("sslcrldir", Some("PGSSLCRLDIR")),
        ("sslsni", Some("PGSSLSNI")),
        ("requirepeer", Some("PGREQUIREPEER")),
        ("gssencmode", Some("PGGSSENCMODE")),
        ("krbsrvname", Some("PGKRBSRVNAME")),
        ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ];

    fn parsed(given: &[(&str, &str)]) -> Vec<Parsed> {
        LIBPQ15
            .iter()
            .map(|(k, e)| Parsed {
                keyword: k.to_string(),
                envvar: e.map(str::to_string),
                val: given
                    .iter()
                    .find(|(g, _)| g == k)
                    .map(|(_, v)| v.to_string()),
            })
            .collect()
    }

    fn no_file(_: &str) -> Result<String, String> {
        Err("must not be read".into())
    }

    const TCP: &[(&str, &str)] = &[
        ("host", "db1"),
        ("sslmode", "verify-full"),
        ("sslrootcert", "/etc/pam_otp/ca.crt"),
    ];

    #[test]
    fn every_keyword_with_a_variable_gets_a_value_but_the_unset_ones() {
        let p = pin(&parsed(TCP), "/x", &mut no_file, "root").unwrap();
        for (k, e) in LIBPQ15 {
            let unset = [
                "service",
                "password",
                "hostaddr",
                "options",
                "sslcrldir",
                "requirepeer",
            ];
            if e.is_some() && !unset.contains(k) {
                assert!(p.get(k).is_some_and(|v| !v.is_empty()), "{k} unpinned");
            }
        }
        assert_eq!(p.get("gssencmode"), Some("disable"));
        assert_eq!(p.get("passfile"), Some(NO_FILE));
        assert_eq!(p.get("sslcert"), Some(NO_FILE));
        assert_eq!(p.get("user"), Some("root"));
        assert_eq!(p.get("dbname"), Some("root"));
        assert_eq!(p.get("connect_timeout"), Some("5"));
        assert_eq!(p.get("service"), None);
        assert_eq!((p.hosts, p.timeout), (1, 5));
    }

    /// The keywords libpq 16, 17 and 18 added with an environment
    /// variable (upstream fe-connect.c's PQconninfoOptions): each has a
    /// rule, so a host with PGDG's newer libpq5 still connects. Without
    /// gssdelegation's rule every login there was refused.
    const LIBPQ16_TO_18: &[(&str, &str)] = &[
        ("require_auth", "PGREQUIREAUTH"),
        ("sslcertmode", "PGSSLCERTMODE"),
        ("load_balance_hosts", "PGLOADBALANCEHOSTS"),
        ("gssdelegation", "PGGSSDELEGATION"),
        ("sslnegotiation", "PGSSLNEGOTIATION"),
        ("servicefile", "PGSERVICEFILE"),
        ("min_protocol_version", "PGMINPROTOCOLVERSION"),
        ("max_protocol_version", "PGMAXPROTOCOLVERSION"),
    ];

    #[test]
    fn a_newer_libpq_has_a_rule_for_every_variable_it_added() {
        let mut list = parsed(TCP);
        for (k, e) in LIBPQ16_TO_18 {
            list.push(Parsed {
                keyword: k.to_string(),
                envvar: Some(e.to_string()),
                val: None,
            });
        }
        let p = pin(&list, "/x", &mut no_file, "root").unwrap();
        assert_eq!(p.get("gssdelegation"), Some("0"));
        assert_eq!(p.get("servicefile"), Some(NO_FILE));
    }

    #[test]
    fn a_keyword_with_a_variable_and_no_rule_is_refused() {
        let mut list = parsed(TCP);
        list.push(Parsed {
            keyword: "sslfuture".into(),
            envvar: Some("PGSSLFUTURE".into()),
            val: None,
        });
        let why = pin(&list, "/x", &mut no_file, "root").unwrap_err().0;
        assert!(
            why.contains("sslfuture") && why.contains("PGSSLFUTURE"),
            "{why}"
        );
    }

    #[test]
    fn tcp_needs_verify_full_and_a_root_certificate_loopback_too() {
        for given in [
            vec![
                ("host", "127.0.0.1"),
                ("sslmode", "require"),
                ("sslrootcert", "/ca"),
            ],
            vec![("host", "db1"), ("sslmode", "verify-full")],
            vec![("hostaddr", "127.0.0.1"), ("requirepeer", "postgres")],
        ] {
            let err = pin(&parsed(&given), "/x", &mut no_file, "root");
            assert!(err.is_err(), "{given:?}");
        }
    }

    #[test]
    fn a_unix_socket_needs_requirepeer() {
        let why = pin(
            &parsed(&[("host", "/var/run/postgresql")]),
            "/x",
            &mut no_file,
            "root",
        )
        .unwrap_err()
        .0;
        assert!(why.contains("requirepeer"), "{why}");
        // No host at all is the default socket directory.
        assert!(pin(&parsed(&[]), "/x", &mut no_file, "root").is_err());
        let ok = pin(
            &parsed(&[("requirepeer", "postgres")]),
            "/x",
            &mut no_file,
            "root",
        )
        .unwrap();
        assert_eq!(ok.get("host"), Some(DEFAULT_SOCKET_DIR));
        // One Unix entry in a multi-host list is enough to need it.
        let mixed: Vec<_> = TCP
            .iter()
            .copied()
            .map(|(k, v)| (k, if k == "host" { "db1,/run/pg" } else { v }))
            .collect();
        assert!(pin(&parsed(&mixed), "/x", &mut no_file, "root").is_err());
    }

    #[test]
    fn gssencmode_other_than_disable_and_a_zero_timeout_are_refused() {
        let mut given = TCP.to_vec();
        given.push(("gssencmode", "prefer"));
        assert!(pin(&parsed(&given), "/x", &mut no_file, "root").is_err());
        let mut given = TCP.to_vec();
        given.push(("connect_timeout", "0"));
        assert!(pin(&parsed(&given), "/x", &mut no_file, "root").is_err());
        let mut given = TCP.to_vec();
        given.push(("connect_timeout", "1"));
        assert_eq!(
            pin(&parsed(&given), "/x", &mut no_file, "root")
                .unwrap()
                .timeout,
            2
        );
    }

    #[test]
    fn a_service_comes_from_the_one_file_and_the_string_wins() {
        let file = "# fleet\n[other]\nhost=evil\n[pam_otp]\nhost = db1,db2\nsslmode=verify-full\nsslrootcert=/etc/pam_otp/ca.crt\nuser=web1\nconnect_timeout=3\n";
        let mut read = |path: &str| {
            assert_eq!(path, "/etc/svc.conf");
            Ok(file.to_string())
        };
        let p = pin(
            &parsed(&[("service", "pam_otp"), ("user", "web9")]),
            "/etc/svc.conf",
            &mut read,
            "root",
        )
        .unwrap();
        assert_eq!(p.get("host"), Some("db1,db2"));
        assert_eq!(p.get("user"), Some("web9"));
        assert_eq!(p.get("dbname"), Some("web9"));
        assert_eq!(p.get("service"), None);
        assert_eq!((p.hosts, p.timeout), (2, 3));
        let mut missing = |_: &str| -> Result<String, String> { Err("not found".into()) };
        let why = pin(
            &parsed(&[("service", "pam_otp")]),
            "/etc/svc.conf",
            &mut missing,
            "root",
        )
        .unwrap_err()
        .0;
        assert!(
            why.contains("/etc/svc.conf") && why.contains("not found"),
            "{why}"
        );
        let mut read = |_: &str| Ok("[pam_otp]\nhostx=1\n".to_string());
        assert!(pin(&parsed(&[("service", "pam_otp")]), "/s", &mut read, "root").is_err());
        let mut read = |_: &str| Ok("[pam_otp]\nservice=other\n".to_string());
        assert!(pin(&parsed(&[("service", "pam_otp")]), "/s", &mut read, "root").is_err());
        let mut read = |_: &str| Ok("ldap://x/y?z\n".to_string());
        assert!(pin(&parsed(&[("service", "pam_otp")]), "/s", &mut read, "root").is_err());
        let mut read = |_: &str| Ok("[x]\nhost=a\n".to_string());
        assert!(pin(&parsed(&[("service", "pam_otp")]), "/s", &mut read, "root").is_err());
    }
}
