//! The admin config (`/etc/security/pam_otp.toml`) and the module arguments
//! that override it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use crate::rate_limit::RateLimit;
use crate::safe_fs::{self, FsError, Holds};
use ipnet::IpNet;

use crate::rules::{plain_ipv4_net, Action, BadSource, Rollout, Rule, Source, TtyPattern};

pub const DEFAULT_PATH: &str = "/etc/security/pam_otp.toml";
pub const DEFAULT_SECRET: &str = "%h/.pam_otp.toml";
pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const FORWARD_PASS_PROMPT: &str = "Password & verification code: ";
/// What `forward_pass` and `split_pass` ask when no code is needed.
pub const PASSWORD_PROMPT: &str = "Password: ";
/// Where the module keeps state of its own (`unenrolled`'s tallies).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam_otp";
/// Where `[postgresql] service=` names are looked up (postgresql-common's
/// system-wide service file).
pub const DEFAULT_SERVICE_FILE: &str = "/etc/postgresql-common/pg_service.conf";
/// The largest service file read.
pub const MAX_SERVICE_FILE_SIZE: u64 = 1024 * 1024;
pub const MAX_TOTP_SKEW: u32 = 10;
pub const MAX_HOTP_WINDOW: u32 = 1000;

/// The longest `grace_period` accepted: a day. Longer is no second factor.
pub const MAX_GRACE_PERIOD: u64 = 24 * 60 * 60;

/// The default `max_exemption`, in days.
pub const DEFAULT_MAX_EXEMPTION_DAYS: u64 = 30;
/// The largest `max_exemption` accepted, in days: a year.
pub const MAX_MAX_EXEMPTION_DAYS: u64 = 366;

/// What to do for a user with no token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    Deny,
    Allow,
    /// Enroll the user inside the login conversation (`enroll`).
    Enroll,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Deny => "deny",
            Missing::Allow => "allow",
            Missing::Enroll => "enroll",
        }
    }
}

/// Where users' tokens and state live (`store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The `secret` template: the user's own file.
    Home,
    /// `<state_dir>/users/<user>.toml`, root's.
    System,
    /// One database for a fleet (not built yet: refused at load).
    Postgresql,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Home => "home",
            StoreKind::System => "system",
            StoreKind::Postgresql => "postgresql",
        }
    }
}

/// The effective settings for one login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub store: StoreKind,
    pub secret: String,
    pub missing: Missing,
    pub default: Action,
    pub prompt: String,
    pub forward_pass: bool,
    /// `split_pass`: split the answer, hand the password on, keep the code
    /// for the pam_otp line after the password module.
    pub split_pass: bool,
    pub try_first_pass: bool,
    pub use_first_pass: bool,
    pub totp_skew: u32,
    pub hotp_window: u32,
    /// Seconds after an accepted code in which the same user needs no code
    /// from the same address (0: off).
    pub grace_period: u64,
    pub enroll_on_login: bool,
    /// `enforce_after` (Unix seconds): before it, a user without a token
    /// is let in, told the date and offered enrollment where the stack
    /// can enroll; from it on, `missing` applies. A rule's own
    /// `enforce_after` wins for the logins it matches.
    pub enforce_after: Option<u64>,
    /// `max_exemption` in seconds: the longest exemption `otp-enroll
    /// exempt` grants and the module honours (0: none).
    pub max_exemption: u64,
    pub rate_limit: RateLimit,
    /// Root's directory for the module's own state.
    pub state_dir: String,
    pub rules: Vec<Rule>,
    /// `[postgresql]`: how to reach the fleet's database.
    pub postgresql: Postgresql,
    /// Module arguments not understood, kept for the log.
    pub unknown_args: Vec<String>,
}

/// `[postgresql]`: libpq connection strings. Credentials do not belong
/// here (the config is readable by everyone): a service file, a password
/// file or a client certificate that only root can read does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Postgresql {
    /// The host role's connection (the module; `otp-enroll db status`).
    pub conninfo: String,
    /// The admin role's connection (`otp-enroll` run as root).
    pub admin_conninfo: String,
    /// The one libpq service file a `service=` name is looked up in,
    /// trusted like the config (never `PGSERVICEFILE`, `~/.pg_service.conf`
    /// or `PGSYSCONFDIR`).
    pub service_file: String,
    /// The helper process libpq runs in (`crate::pq`); another path only
    /// for tests of a build that is not installed.
    pub helper: String,
}

impl Default for Postgresql {
    fn default() -> Postgresql {
        Postgresql {
            conninfo: "service=pam_otp".into(),
            admin_conninfo: "service=pam_otp_admin".into(),
            service_file: DEFAULT_SERVICE_FILE.into(),
            helper: crate::pq::DEFAULT_HELPER.into(),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            store: StoreKind::Home,
            secret: DEFAULT_SECRET.into(),
            missing: Missing::Deny,
            default: Action::Require,
            prompt: DEFAULT_PROMPT.into(),
            forward_pass: false,
            split_pass: false,
            try_first_pass: false,
            use_first_pass: false,
            totp_skew: 1,
            hotp_window: 10,
            grace_period: 0,
            enroll_on_login: false,
            enforce_after: None,
            max_exemption: DEFAULT_MAX_EXEMPTION_DAYS * 86_400,
            rate_limit: RateLimit::default(),
            state_dir: DEFAULT_STATE_DIR.into(),
            rules: Vec::new(),
            postgresql: Postgresql::default(),
            unknown_args: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    /// Not TOML, an unknown key, or a value of the wrong type.
    Syntax(String),
    /// A value that parses but is not allowed; names the key.
    Value { key: String, why: String },
    /// An address list (`from_file`) of rule `rule` cannot be used.
    List {
        rule: usize,
        path: String,
        err: ListError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax(m) => write!(f, "{m}"),
            ConfigError::Value { key, why } => write!(f, "{key}: {why}"),
            ConfigError::List { rule, path, err } => {
                write!(f, "rule {rule}: from_file {path}: {err}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A connection string is usable here: text, and no secret in it (the
/// config is world-readable; libpq's password and service files are not).
fn check_conninfo(conninfo: &str) -> Result<(), &'static str> {
    if conninfo.trim().is_empty() || has_control(conninfo, None) {
        return Err("must be a non-empty libpq connection string without control characters");
    }
    let lower = conninfo.to_ascii_lowercase();
    let uri_password = ["postgresql://", "postgres://"]
        .iter()
        .filter_map(|scheme| lower.strip_prefix(scheme))
        .any(|rest| {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            authority
                .rsplit_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        });
    if lower.contains("password") || uri_password {
        return Err("must not hold a password (the config is readable by everyone): use a password file (passfile, ~/.pgpass) or a client certificate that only root can read");
    }
    Ok(())
}

fn bad(key: impl Into<String>, why: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key: key.into(),
        why: why.into(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig<'a> {
    store: Option<StoreKind>,
    secret: Option<String>,
    missing: Option<Missing>,
    default: Option<Action>,
    prompt: Option<String>,
    forward_pass: Option<bool>,
    totp_skew: Option<u32>,
    hotp_window: Option<u32>,
    grace_period: Option<u64>,
    enroll_on_login: Option<bool>,
    enforce_after: Option<String>,
    max_exemption: Option<u64>,
    rate_limit: Option<RawRateLimit>,
    state_dir: Option<String>,
    #[serde(default, borrow)]
    rule: Vec<RawRule<'a>>,
    postgresql: Option<RawPostgresql>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgresql {
    conninfo: Option<String>,
    admin_conninfo: Option<String>,
    service_file: Option<String>,
    helper: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    max_failures: Option<u32>,
    interval: Option<u64>,
}

/// `from` entries are borrowed from the text (copied only when TOML
/// escapes forced it): they are parsed into networks right away.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule<'a> {
    #[serde(borrow)]
    from: Option<Vec<Cow<'a, str>>>,
    from_file: Option<Vec<String>>,
    users: Option<Vec<String>>,
    groups: Option<Vec<String>>,
    services: Option<Vec<String>>,
    ttys: Option<Vec<String>>,
    otp: Action,
    missing: Option<Missing>,
    enforce_after: Option<String>,
}

/// Reads an address list by path (the file system's, in production).
pub type ReadList<'r> = &'r mut dyn FnMut(&str) -> Result<String, FsError>;

impl Config {
    /// Parses a config file's text over the defaults, reading the address
    /// lists its rules name (`from_file`) from the file system, trusted as
    /// the config is.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, &mut |path| read_trusted(path, MAX_LIST_SIZE))
    }

    /// [`Config::parse`], with the address lists read by `read_list`.
    pub fn parse_with(text: &str, read_list: ReadList<'_>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            ConfigError::Syntax(format!("TOML: {}", e.message().trim().replace('\n', " ")))
        })?;
        let d = Config::default();
        let mut cfg = Config {
            store: raw.store.unwrap_or(d.store),
            secret: raw.secret.unwrap_or(d.secret),
            missing: raw.missing.unwrap_or(d.missing),
            default: raw.default.unwrap_or(d.default),
            prompt: raw.prompt.unwrap_or(d.prompt),
            forward_pass: raw.forward_pass.unwrap_or(d.forward_pass),
            totp_skew: raw.totp_skew.unwrap_or(d.totp_skew),
            hotp_window: raw.hotp_window.unwrap_or(d.hotp_window),
            grace_period: raw.grace_period.unwrap_or(d.grace_period),
            enroll_on_login: raw.enroll_on_login.unwrap_or(d.enroll_on_login),
            state_dir: raw.state_dir.unwrap_or(d.state_dir),
            enforce_after: raw
                .enforce_after
                .as_deref()
                .map(|t| deadline("enforce_after", t))
                .transpose()?,
            ..d
        };
        if let Some(days) = raw.max_exemption {
            if days > MAX_MAX_EXEMPTION_DAYS {
                return Err(bad(
                    "max_exemption",
                    format!("{days} days is more than {MAX_MAX_EXEMPTION_DAYS} (a year)"),
                ));
            }
            cfg.max_exemption = days * 86_400;
        }
        if let Some(rl) = raw.rate_limit {
            cfg.rate_limit = RateLimit {
                max_failures: rl.max_failures.unwrap_or(cfg.rate_limit.max_failures),
                interval: rl.interval.unwrap_or(cfg.rate_limit.interval),
            };
        }
        if let Some(pg) = raw.postgresql {
            cfg.postgresql = Postgresql {
                conninfo: pg.conninfo.unwrap_or(cfg.postgresql.conninfo),
                admin_conninfo: pg.admin_conninfo.unwrap_or(cfg.postgresql.admin_conninfo),
                service_file: pg.service_file.unwrap_or(cfg.postgresql.service_file),
                helper: pg.helper.unwrap_or(cfg.postgresql.helper),
            };
        }
        cfg.rules = raw
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, r)| convert_rule(i + 1, r, read_list))
            .collect::<Result<_, _>>()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies the module arguments (`config=` is handled by the caller,
    /// which needs it before there is a config). Unknown arguments are kept
    /// in `unknown_args` for the log; they are never fatal.
    pub fn apply_args<'a>(
        &mut self,
        args: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        let mut unknown = Vec::new();
        for arg in args {
            match arg.split_once('=') {
                Some(("config", _)) => {}
                Some(("secret", t)) => self.secret = t.to_string(),
                Some(("prompt", t)) => self.prompt = t.to_string(),
                Some(("grace_period", n)) => {
                    self.grace_period = n.parse().map_err(|_| {
                        bad("grace_period", format!("{n:?} is not a number of seconds"))
                    })?
                }
                // Read by the caller, which logs more with it.
                None if arg == "debug" => {}
                None if arg == "nullok" => self.missing = Missing::Allow,
                None if arg == "forward_pass" => self.forward_pass = true,
                None if arg == "split_pass" => self.split_pass = true,
                None if arg == "try_first_pass" => self.try_first_pass = true,
                None if arg == "use_first_pass" => self.use_first_pass = true,
                _ => unknown.push(arg.to_string()),
            }
        }
        self.unknown_args = unknown;
        self.validate()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_template(&self.secret)
            .map_err(|why| bad("secret", format!("{:?}: {why}", self.secret)))?;
        if self.prompt.is_empty() || has_control(&self.prompt, Some('\n')) {
            return Err(bad(
                "prompt",
                "must be non-empty text without control characters",
            ));
        }
        if !self.state_dir.starts_with('/') || has_control(&self.state_dir, None) {
            return Err(bad(
                "state_dir",
                "must be an absolute path without control characters",
            ));
        }
        for (key, conninfo) in [
            ("postgresql.conninfo", &self.postgresql.conninfo),
            ("postgresql.admin_conninfo", &self.postgresql.admin_conninfo),
        ] {
            check_conninfo(conninfo).map_err(|why| bad(key, why))?;
        }
        for (key, path) in [
            ("postgresql.service_file", &self.postgresql.service_file),
            ("postgresql.helper", &self.postgresql.helper),
        ] {
            if !path.starts_with('/') || has_control(path, None) {
                return Err(bad(
                    key,
                    "must be an absolute path without control characters",
                ));
            }
        }
        if self.grace_period > MAX_GRACE_PERIOD {
            return Err(bad(
                "grace_period",
                format!(
                    "{} s is more than {MAX_GRACE_PERIOD} s (a day)",
                    self.grace_period
                ),
            ));
        }
        if self.totp_skew > MAX_TOTP_SKEW {
            return Err(bad(
                "totp_skew",
                format!("{} is more than {MAX_TOTP_SKEW} steps", self.totp_skew),
            ));
        }
        if self.hotp_window > MAX_HOTP_WINDOW {
            return Err(bad(
                "hotp_window",
                format!("{} is more than {MAX_HOTP_WINDOW}", self.hotp_window),
            ));
        }
        self.rate_limit
            .validate()
            .map_err(|(key, why)| bad(format!("rate_limit.{key}"), why))?;
        Ok(())
    }
}

/// A DATE of the config (`enforce_after`): SPEC "Dates and times".
fn deadline(key: &str, text: &str) -> Result<u64, ConfigError> {
    crate::date::parse_date(text).ok_or_else(|| {
        bad(
            key,
            format!(
                "{text:?} is not a date: YYYY-MM-DD (that day's 00:00:00 UTC) or an RFC 3339 \
                 time with an offset (2027-01-15T09:00:00+01:00)"
            ),
        )
    })
}

fn convert_rule(n: usize, r: RawRule<'_>, read_list: ReadList<'_>) -> Result<Rule, ConfigError> {
    let key = |field: &str| format!("rule {n}: {field}");
    // What a rule says of users without a token means something only
    // where it asks for a code: elsewhere it would be a silent no-op.
    if r.otp != Action::Require && (r.missing.is_some() || r.enforce_after.is_some()) {
        let field = if r.missing.is_some() {
            "missing"
        } else {
            "enforce_after"
        };
        return Err(bad(
            key(field),
            format!(
                "means something only in a rule with otp = \"require\" (this one's is \"{}\")",
                r.otp.as_str()
            ),
        ));
    }
    let rollout = Rollout {
        missing: r.missing,
        enforce_after: r
            .enforce_after
            .as_deref()
            .map(|t| deadline(&key("enforce_after"), t))
            .transpose()?,
    };
    fn non_empty<S: AsRef<str>>(
        key: impl Fn(&str) -> String,
        field: &str,
        list: &Option<Vec<S>>,
    ) -> Result<(), ConfigError> {
        match list {
            Some(l) if l.is_empty() => Err(bad(
                key(field),
                "an empty list matches nothing; leave the key out instead",
            )),
            Some(l) if l.iter().any(|s| s.as_ref().trim().is_empty()) => {
                Err(bad(key(field), "empty name"))
            }
            _ => Ok(()),
        }
    }
    non_empty(key, "from", &r.from)?;
    non_empty(key, "from_file", &r.from_file)?;
    non_empty(key, "users", &r.users)?;
    non_empty(key, "groups", &r.groups)?;
    non_empty(key, "services", &r.services)?;
    non_empty(key, "ttys", &r.ttys)?;
    let ttys = match r.ttys {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|t| {
                    TtyPattern::parse(t).map_err(|why| bad(key("ttys"), format!("{t:?} {why}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut from = match r.from {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|s| {
                    Source::try_parse(s).map_err(|why| bad(key("from"), format!("{s:?} {why}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    // `from` and `from_file` of one rule mean the union.
    for path in r.from_file.into_iter().flatten() {
        if !path.starts_with('/') || has_control(&path, None) {
            return Err(bad(
                key("from_file"),
                format!("{path:?} is not an absolute path without control characters"),
            ));
        }
        let list = read_list(&path)
            .map_err(ListError::File)
            .and_then(|text| parse_list(&text));
        match list {
            Ok(nets) => match &mut from {
                Some(from) => from.extend(nets),
                None => from = Some(nets),
            },
            Err(err) => return Err(ConfigError::List { rule: n, path, err }),
        }
    }
    Ok(Rule {
        from,
        users: r.users,
        groups: r.groups,
        services: r.services,
        ttys,
        otp: r.otp,
        rollout,
    })
}

/// Address lists larger than this are refused, as configs are.
pub const MAX_LIST_SIZE: u64 = MAX_CONFIG_SIZE;

/// Why an address list (`from_file`) cannot be used.
#[derive(Debug)]
pub enum ListError {
    File(FsError),
    /// Line `line` (1-based) holds no address or CIDR.
    Entry {
        line: usize,
        /// The entry, when it is short and made of the characters of an
        /// address; `None`, with its length, otherwise: a file named by
        /// mistake (`/etc/shadow`) must not have its lines logged.
        shown: Option<String>,
        len: usize,
        why: BadEntry,
    },
    /// No networks at all: the rule would match nothing.
    Empty,
}

/// What is wrong with one line of an address list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadEntry {
    /// `local` is not a network: a console login is the config's to allow,
    /// not a list's that some inventory or GeoIP export produced.
    Local,
    NotAnAddress,
    /// See [`BadSource::MappedPrefix`].
    MappedPrefix,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::File(err) => write!(f, "{err}"),
            ListError::Entry {
                line,
                shown,
                len,
                why,
            } => {
                write!(f, "line {line}: ")?;
                match (why, shown) {
                    (BadEntry::Local, _) => write!(
                        f,
                        "\"local\" is not a network; a list holds addresses and CIDRs only \
                         (write \"local\" in the rule's from)"
                    ),
                    (BadEntry::NotAnAddress, Some(text)) => {
                        write!(f, "{text:?} is not an address or a CIDR")
                    }
                    (BadEntry::NotAnAddress, None) => write!(
                        f,
                        "not an address or a CIDR ({len} characters, not shown as they are \
                         not all those of an address)"
                    ),
                    (BadEntry::MappedPrefix, shown) => {
                        let text = shown.as_deref().unwrap_or("the entry");
                        write!(f, "{text:?} {}", BadSource::MappedPrefix)
                    }
                }
            }
            ListError::Empty => write!(
                f,
                "no networks in it (an empty list would match nothing; leave it out of from_file)"
            ),
        }
    }
}

/// The networks of an address list: one address or CIDR a line; from a
/// `#` to the end of the line is a comment; blank lines are skipped.
pub fn parse_list(text: &str) -> Result<Vec<Source>, ListError> {
    let mut nets = Vec::new();
    let mut rest = text.as_bytes();
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        // Most lines are a network and nothing else: no comment or spaces.
        if let Some((net, after @ ([] | [b'\n', ..]))) = plain_ipv4_net(rest) {
            nets.push(Source::Net(IpNet::V4(net)));
            rest = after.get(1..).unwrap_or_default();
            continue;
        }
        let after = next_line(rest);
        let line = &rest[..rest.len() - after.len()];
        rest = after;
        // A cut after a newline leaves whole UTF-8 characters.
        let line = std::str::from_utf8(line).unwrap_or_default();
        let entry = line.split_once('#').map_or(line, |(entry, _)| entry);
        let entry = entry.trim_ascii();
        if entry.is_empty() {
            continue;
        }
        let why = match Source::parse_net(entry) {
            Ok(net) => {
                nets.push(Source::Net(net));
                continue;
            }
            Err(_) if entry == "local" => BadEntry::Local,
            Err(BadSource::NotAnAddress) => BadEntry::NotAnAddress,
            Err(BadSource::MappedPrefix) => BadEntry::MappedPrefix,
        };
        let looks_like_an_address = entry.len() <= 64
            && entry
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b".:/%[]".contains(&b));
        return Err(ListError::Entry {
            line: line_no,
            shown: looks_like_an_address.then(|| entry.to_string()),
            len: entry.chars().count(),
            why,
        });
    }
    if nets.is_empty() {
        return Err(ListError::Empty);
    }
    Ok(nets)
}

/// What follows the first newline of `text` (nothing if it has none).
fn next_line(text: &[u8]) -> &[u8] {
    match text.iter().position(|&b| b == b'\n') {
        Some(at) => &text[at + 1..],
        None => &[],
    }
}

/// Why a secret path template (`secret`, `secret=`, `otp-enroll
/// --secret-file`) is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// Neither an absolute path nor one that starts with the home.
    NotAbsolute,
    ControlCharacters,
    /// A `%` or `$` that starts none of the placeholders: taken literally
    /// it would name a file that does not exist, which `nullok` lets in.
    UnknownPlaceholder(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::NotAbsolute => {
                write!(f, "must be an absolute path, or start with %h or ${{HOME}}")
            }
            TemplateError::ControlCharacters => write!(f, "control characters in the path"),
            TemplateError::UnknownPlaceholder(p) => write!(
                f,
                "{p:?} is not a placeholder: use %u or ${{USER}} (the user), %h or ${{HOME}} \
                 (the home), %% (a '%')"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// One piece of a secret path template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece<'t> {
    Text(&'t str),
    /// `%u`, or google-authenticator-libpam's `${USER}`.
    User,
    /// `%h` or `${HOME}`.
    Home,
    /// `%%`.
    Percent,
    /// Any other `%x`, `${...}` or `$NAME`.
    Unknown(&'t str),
}

/// Splits a template into its pieces, the one reading of a template that
/// both checking and expanding use.
fn pieces(t: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(at) = rest.find(['%', '$']) {
        let (text, tail) = rest.split_at(at);
        if !text.is_empty() {
            out.push(Piece::Text(text));
        }
        let known = [
            ("%u", Piece::User),
            ("%h", Piece::Home),
            ("%%", Piece::Percent),
            ("${USER}", Piece::User),
            ("${HOME}", Piece::Home),
        ];
        let (piece, len) = match known.iter().find(|(p, _)| tail.starts_with(p)) {
            Some(&(p, piece)) => (piece, p.len()),
            None => {
                let len = unknown_len(tail);
                (Piece::Unknown(tail.get(..len).unwrap_or(tail)), len)
            }
        };
        out.push(piece);
        rest = tail.get(len..).unwrap_or_default();
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// The length of the unknown placeholder `tail` starts with (at a `%` or
/// `$`): `%x`, `${...}` up to its `}`, `$NAME`, or the sign alone.
fn unknown_len(tail: &str) -> usize {
    // '%' and '$' are one byte each.
    let after = tail.get(1..).unwrap_or_default();
    if tail.starts_with("${") {
        tail.find('}').map_or(tail.len(), |end| end + 1)
    } else if tail.starts_with('$') {
        let name = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        1 + name
    } else {
        1 + after.chars().next().map_or(0, char::len_utf8)
    }
}

/// Checks a secret path template: absolute (or starting with the home), no
/// control characters, and only the placeholders `%u`, `%h`, `%%` and
/// google-authenticator-libpam's `${USER}` and `${HOME}`. Shared by the
/// module and `otp-enroll --secret-file`.
pub fn check_template(t: &str) -> Result<(), TemplateError> {
    if has_control(t, None) {
        return Err(TemplateError::ControlCharacters);
    }
    let pieces = pieces(t);
    if let Some(Piece::Unknown(p)) = pieces.iter().find(|p| matches!(p, Piece::Unknown(_))) {
        return Err(TemplateError::UnknownPlaceholder(p.to_string()));
    }
    match pieces.first() {
        Some(Piece::Home) => Ok(()),
        Some(Piece::Text(text)) if text.starts_with('/') => Ok(()),
        _ => Err(TemplateError::NotAbsolute),
    }
}

/// Whether `s` holds a control character other than `allowed`.
fn has_control(s: &str, allowed: Option<char>) -> bool {
    s.chars().any(|c| c.is_control() && Some(c) != allowed)
}

/// Expands a template for one user; [`check_template`] must have passed
/// (an unknown placeholder would expand to nothing).
pub fn expand_template(t: &str, user: &str, home: &str) -> String {
    let mut out = String::with_capacity(t.len() + home.len());
    for piece in pieces(t) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::User => out.push_str(user),
            Piece::Home => out.push_str(home.trim_end_matches('/')),
            Piece::Percent => out.push('%'),
            Piece::Unknown(_) => {}
        }
    }
    out
}

/// Config files larger than this are refused (10 000 rules fit easily).
pub const MAX_CONFIG_SIZE: u64 = 8 * 1024 * 1024;

/// A file of settings (the config, an address list, libpq's service
/// file), read by the one reader of root's files, [`safe_fs::read_trusted`]:
/// whoever can write it decides who needs a code.
pub(crate) fn read_trusted(path: &str, max: u64) -> Result<String, FsError> {
    safe_fs::read_trusted(std::path::Path::new(path), Holds::Settings, max)
}

/// Why the config in force for a login cannot be used: every such login
/// fails closed.
#[derive(Debug)]
pub enum LoadError {
    /// The config file at `path` cannot be read or is not trusted.
    File { path: String, err: FsError },
    /// Its text is refused (the error names the key or rule).
    Invalid { path: String, err: ConfigError },
    /// A module argument is refused (they apply over the file).
    Arguments(ConfigError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::File { path, err } => write!(f, "config {path}: {err}"),
            LoadError::Invalid { path, err } => write!(f, "config {path}: {err}"),
            LoadError::Arguments(err) => write!(f, "module arguments: {err}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads the admin config. A missing file means the defaults; otherwise it
/// must be trusted as [`safe_fs::read_trusted`] says: whoever can write it decides
/// who needs a code. It is read and parsed at every call; no copy of it is
/// kept anywhere.
pub fn load(path: &str) -> Result<Config, LoadError> {
    let text = match read_trusted(path, MAX_CONFIG_SIZE) {
        Ok(text) => text,
        Err(FsError::NotFound) => return Ok(Config::default()),
        Err(err) => {
            return Err(LoadError::File {
                path: path.into(),
                err,
            })
        }
    };
    Config::parse(&text).map_err(|err| LoadError::Invalid {
        path: path.into(),
        err,
    })
}

/// The `config=` argument, if given.
pub fn config_path_arg<'a>(args: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    args.into_iter().find_map(|a| a.strip_prefix("config="))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = r#"
secret  = "%h/.pam_otp.toml"
missing = "deny"
default = "require"
prompt  = "Verification code: "
forward_pass = false
totp_skew   = 1
hotp_window = 10
enroll_on_login = false

[rate_limit]
max_failures = 3
interval = 30

[[rule]]
from = ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]
groups = ["staff"]
otp = "skip"

[[rule]]
users = ["root"]
from = ["0.0.0.0/0", "::/0"]
otp = "deny"
"#;

    #[test]
    fn spec_example_parses() {
        let c = Config::parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[1].otp, Action::Deny);
        assert_eq!(c.rate_limit.max_failures, 3);
        assert_eq!(c.rate_limit.interval, 30);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_bad_key_is_named() {
        assert!(err("missing = \"maybe\"").contains("maybe"));
        assert!(err("defualt = \"skip\"").contains("defualt"));
        assert!(err("totp_skew = 11").starts_with("totp_skew"));
        assert!(err("hotp_window = 5000").starts_with("hotp_window"));
        assert!(err("totp_skew = -1").contains("TOML"));
        assert!(err("secret = \"relative/path\"").starts_with("secret"));
        assert!(err("secret = \"/x/%z\"").starts_with("secret"));
        assert!(err("prompt = \"\"").starts_with("prompt"));
        assert!(err("[rate_limit]\ninterval = 0").starts_with("rate_limit.interval"));
        assert!(err("[rate_limit]\nmax = 3").contains("max"));
        assert!(
            err("[[rule]]\nfrom = [\"10.0.0.0/33\"]\notp = \"skip\"").starts_with("rule 1: from")
        );
        assert!(err(
            "[[rule]]\notp = \"skip\"\n[[rule]]\nfrom = [\"host.example\"]\notp = \"skip\""
        )
        .starts_with("rule 2: from"));
        assert!(err("[[rule]]\nusers = []\notp = \"skip\"").starts_with("rule 1: users"));
        assert!(err("[[rule]]\nfrom = [\"local\"]").contains("otp"));
        assert!(err("[[rule]]\nfrom = [\"local\"]\notp = \"maybe\"").contains("maybe"));
        assert!(
            err("[[rule]]\nfrom = [\"local\"]\nuser = [\"x\"]\notp = \"skip\"").contains("user")
        );
        assert!(err("this is not toml").contains("TOML"));
        let mapped = err("[[rule]]\nfrom = [\"::ffff:10.0.0.0/64\"]\notp = \"skip\"");
        assert!(
            mapped.starts_with("rule 1: from")
                && mapped.contains("IPv4-mapped")
                && mapped.contains("96"),
            "{mapped}"
        );
    }

    /// The break-glass rule of the admin guide and SPEC parses; bad `ttys`
    /// entries are refused at load, naming the rule and saying why.
    #[test]
    fn ttys_patterns_are_read_and_checked() {
        let text = "[[rule]]\nusers = [\"root\"]\nservices = [\"login\"]\n\
                    ttys = [\"tty[0-9]*\"]\notp = \"skip\"\n";
        let cfg = Config::parse(text).unwrap();
        let ttys = cfg.rules[0].ttys.as_ref().unwrap();
        assert_eq!(ttys.len(), 1);
        assert_eq!(ttys[0].as_str(), "tty[0-9]*");
        for (list, says) in [
            ("[]", "empty list"),
            ("[\"\"]", "empty name"),
            ("[\"/dev/tty1\"]", "without its /dev/"),
            ("[\"pts/**\"]", "**"),
            ("[\"tty[0-9\"]", "not a pattern"),
        ] {
            let e = err(&format!("[[rule]]\nttys = {list}\notp = \"skip\"\n"));
            assert!(
                e.starts_with("rule 1: ttys") && e.contains(says),
                "{list}: {e}"
            );
        }
        // An older module refuses the key as unknown: the admin guide's
        // "Upgrading" is about this.
        assert!(err("[[rule]]\ntty = [\"tty1\"]\notp = \"skip\"").contains("tty"));
    }

    /// A mapped network is read as the IPv4 network it names.
    #[test]
    fn ipv4_mapped_networks_are_normalised() {
        let text = "[[rule]]\nfrom = [\"::ffff:10.0.0.0/104\"]\notp = \"skip\"\n";
        let cfg = Config::parse(text).unwrap();
        assert_eq!(
            cfg.rules[0].from,
            Some(vec![Source::parse("10.0.0.0/8").unwrap()])
        );
    }

    /// A directory of its own under the system temp dir, removed on drop.
    pub(super) struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pam_otp-config-{tag}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        /// Writes `name` with `text` and `mode`; its path as text.
        pub fn file(&self, name: &str, text: &[u8], mode: u32) -> String {
            use std::os::unix::fs::PermissionsExt;
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path.to_str().unwrap().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_trusts_only_a_safe_file_and_names_it() {
        let dir = TempDir::new("load");
        let missing = dir.0.join("absent.toml");
        assert_eq!(load(missing.to_str().unwrap()).unwrap(), Config::default());
        let good = dir.file("good.toml", b"default = \"skip\"\n", 0o644);
        assert_eq!(load(&good).unwrap().default, Action::Skip);
        let reason = |path: &str| load(path).unwrap_err().to_string();
        let group = dir.file("group.toml", b"", 0o664);
        assert_eq!(
            reason(&group),
            format!("config {group}: writable by group or others (mode 0664)")
        );
        let other = dir.file("other.toml", b"", 0o646);
        assert!(
            reason(&other).ends_with("(mode 0646)"),
            "{}",
            reason(&other)
        );
        let latin1 = dir.file("latin1.toml", b"prompt = \"Code\xe9: \"\n", 0o644);
        assert_eq!(reason(&latin1), format!("config {latin1}: not UTF-8 text"));
        let big = dir.file("big.toml", &vec![b'#'; MAX_CONFIG_SIZE as usize + 1], 0o644);
        assert_eq!(
            reason(&big),
            format!(
                "config {big}: {} bytes, more than {MAX_CONFIG_SIZE}",
                MAX_CONFIG_SIZE + 1
            )
        );
        let dir_path = dir.0.to_str().unwrap();
        assert_eq!(
            reason(dir_path),
            format!("config {dir_path}: not a regular file")
        );
        let bad = dir.file("bad.toml", b"totp_skew = 11\n", 0o644);
        assert!(matches!(
            load(&bad),
            Err(LoadError::Invalid {
                err: ConfigError::Value { .. },
                ..
            })
        ));
        assert!(reason(&bad).starts_with(&format!("config {bad}: totp_skew: ")));
    }

    /// Giving a file to another uid needs root: the part of
    /// `load_trusts_only_a_safe_file_and_names_it` an ordinary user cannot run.
    #[test]
    #[ignore = "needs root: make test"]
    fn load_refuses_a_config_of_another_owner() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (chown to another uid): make test runs it"
        );
        let dir = TempDir::new("owner");
        let theirs = dir.file("theirs.toml", b"", 0o644);
        std::os::unix::fs::chown(&theirs, Some(4242), None).unwrap();
        assert_eq!(
            load(&theirs).unwrap_err().to_string(),
            format!("config {theirs}: owned by uid 4242, not root")
        );
    }

    fn net(text: &str) -> Source {
        Source::parse(text).unwrap()
    }

    #[test]
    fn list_files_hold_one_network_a_line_with_comments() {
        let text = "# office, as exported\n\
                    10.0.0.0/8\n\
                    \n\
                    192.168.1.7   # the printer\r\n\
                    \t fd00::/8\t\n\
                    ::ffff:172.16.0.0/108\n\
                    #10.9.9.9\n";
        assert_eq!(
            parse_list(text).unwrap(),
            vec![
                net("10.0.0.0/8"),
                net("192.168.1.7/32"),
                net("fd00::/8"),
                net("172.16.0.0/12"),
            ]
        );
    }

    #[test]
    fn a_bad_list_line_is_named_by_number() {
        let err = |text: &str| parse_list(text).unwrap_err().to_string();
        assert_eq!(
            err("# header\n\n10.0.0.0/8\n10.0.0.0/33\n"),
            "line 4: \"10.0.0.0/33\" is not an address or a CIDR"
        );
        assert!(err("10.0.0.0/8\nlocal\n").starts_with("line 2: \"local\" is not a network"));
        assert!(err("::ffff:10.0.0.0/64\n")
            .starts_with("line 1: \"::ffff:10.0.0.0/64\" is an IPv4-mapped network"));
        assert_eq!(
            err("10.0.0.0/8 10.1.0.0/16\n"),
            "line 1: not an address or a CIDR (22 characters, not shown as they are not all \
             those of an address)"
        );
        // A file named by mistake: its lines stay out of the log.
        let shadow = err("root:$y$j9T$salt$hash:19000:0:99999:7:::\n");
        assert!(shadow.starts_with("line 1: not an address"), "{shadow}");
        assert!(
            !shadow.contains("root") && !shadow.contains("salt"),
            "{shadow}"
        );
        assert!(!err("office.example.org\n").contains("example"));
        for empty in ["", "\n\n", "# nothing yet\n", "   # still nothing\n"] {
            assert!(
                matches!(parse_list(empty), Err(ListError::Empty)),
                "{empty:?}"
            );
        }
    }

    /// A fake file system for `parse_with`: path -> text, or the error.
    fn lists<'f>(files: &'f [(&str, &str)]) -> impl FnMut(&str) -> Result<String, FsError> + 'f {
        move |path| {
            files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, text)| text.to_string())
                .ok_or(FsError::NotFound)
        }
    }

    #[test]
    fn from_and_from_file_mean_the_union() {
        let text = "[[rule]]\nfrom = [\"local\", \"10.0.0.0/8\"]\n\
                    from_file = [\"/l/a.list\", \"/l/b.list\"]\notp = \"skip\"\n\
                    [[rule]]\nfrom_file = [\"/l/b.list\"]\notp = \"deny\"\n";
        let files = [
            ("/l/a.list", "192.168.0.0/16\n"),
            ("/l/b.list", "fd00::/8\n"),
        ];
        let cfg = Config::parse_with(text, &mut lists(&files)).unwrap();
        assert_eq!(
            cfg.rules[0].from,
            Some(vec![
                Source::Local,
                net("10.0.0.0/8"),
                net("192.168.0.0/16"),
                net("fd00::/8"),
            ])
        );
        assert_eq!(cfg.rules[1].from, Some(vec![net("fd00::/8")]));
    }

    #[test]
    fn every_bad_list_names_the_rule_the_file_and_the_line() {
        let files = [
            ("/l/good.list", "10.0.0.0/8\n"),
            ("/l/bad.list", "10.0.0.0/8\n\n10.0.0/8\n"),
            ("/l/empty.list", "# none\n"),
        ];
        let err = |rule: &str| {
            let text = format!(
                "[[rule]]\nfrom_file = [\"/l/good.list\"]\notp = \"deny\"\n[[rule]]\n{rule}otp = \"skip\"\n"
            );
            Config::parse_with(&text, &mut lists(&files))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("from_file = [\"/l/good.list\", \"/l/bad.list\"]\n"),
            "rule 2: from_file /l/bad.list: line 3: \"10.0.0/8\" is not an address or a CIDR"
        );
        assert_eq!(
            err("from_file = [\"/l/gone.list\"]\n"),
            "rule 2: from_file /l/gone.list: no such file"
        );
        assert!(err("from_file = [\"/l/empty.list\"]\n")
            .starts_with("rule 2: from_file /l/empty.list: no networks in it"));
        assert!(err("from_file = [\"office.list\"]\n")
            .starts_with("rule 2: from_file: \"office.list\" is not an absolute path"));
        assert!(err("from_file = [\"../l/good.list\"]\n").starts_with("rule 2: from_file: "));
        assert!(err("from_file = []\n").starts_with("rule 2: from_file: an empty list"));
        assert!(err("from_file = [\" \"]\n").starts_with("rule 2: from_file: empty name"));
        assert!(err("from_file = \"/l/good.list\"\n").contains("TOML"));
    }

    #[test]
    fn list_files_are_trusted_like_the_config() {
        let dir = TempDir::new("lists");
        let good = dir.file("good.list", b"10.0.0.0/8\n", 0o644);
        let group = dir.file("group.list", b"10.0.0.0/8\n", 0o664);
        let binary = dir.file("binary.list", b"10.0.0.0/8\n\xff\n", 0o644);
        let config = |list: &str| {
            let text = format!("[[rule]]\nfrom_file = [{list:?}]\notp = \"skip\"\n");
            dir.file("pam_otp.toml", text.as_bytes(), 0o644)
        };
        let cfg = load(&config(&good)).unwrap();
        assert_eq!(cfg.rules[0].from, Some(vec![net("10.0.0.0/8")]));
        let reason = |list: &str| load(&config(list)).unwrap_err().to_string();
        let path = config(&good);
        assert_eq!(
            reason(&group),
            format!(
                "config {path}: rule 1: from_file {group}: writable by group or others (mode 0664)"
            )
        );
        assert!(reason(&binary).ends_with(": not UTF-8 text"));
        let gone = format!("{}/gone.list", dir.0.display());
        assert!(reason(&gone).ends_with(&format!("from_file {gone}: no such file")));
        let dir_path = dir.0.to_str().unwrap();
        assert!(reason(dir_path).ends_with(": not a regular file"));
    }

    /// The part of `list_files_are_trusted_like_the_config` that needs root.
    #[test]
    #[ignore = "needs root: make test"]
    fn list_files_of_another_owner_are_refused() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (chown to another uid): make test runs it"
        );
        let dir = TempDir::new("list-owner");
        let theirs = dir.file("theirs.list", b"10.0.0.0/8\n", 0o644);
        std::os::unix::fs::chown(&theirs, Some(4242), None).unwrap();
        let text = format!("[[rule]]\nfrom_file = [{theirs:?}]\notp = \"skip\"\n");
        let config = dir.file("pam_otp.toml", text.as_bytes(), 0o644);
        let reason = load(&config).unwrap_err().to_string();
        assert!(
            reason.ends_with(": owned by uid 4242, not root"),
            "{reason}"
        );
    }

    #[test]
    fn arguments_override_the_file() {
        let mut c = Config::parse("missing = \"deny\"").unwrap();
        c.apply_args([
            "nullok",
            "debug",
            "secret=/var/lib/otp/%u",
            "prompt=Code: ",
            "bogus",
            "config=/x",
            "forward_pass",
        ])
        .unwrap();
        assert_eq!(c.missing, Missing::Allow);
        assert!(c.forward_pass);
        assert!(c.unknown_args.iter().all(|a| a != "debug"));
        assert_eq!(c.secret, "/var/lib/otp/%u");
        assert_eq!(c.prompt, "Code: ");
        assert_eq!(c.unknown_args, vec!["bogus"]);
        assert!(c.clone().apply_args(["secret=relative"]).is_err());
        assert_eq!(
            config_path_arg(["debug", "config=/etc/x.toml"]),
            Some("/etc/x.toml")
        );
    }

    #[test]
    fn template_expansion() {
        assert_eq!(
            expand_template("%h/.pam_otp.toml", "alice", "/home/alice/"),
            "/home/alice/.pam_otp.toml"
        );
        assert_eq!(
            expand_template("/var/lib/otp/%u/100%%", "bob", "/h"),
            "/var/lib/otp/bob/100%"
        );
        // google-authenticator-libpam's spellings mean the same.
        assert_eq!(
            expand_template("${HOME}/.otp/${USER}.toml", "carol", "/home/carol/"),
            "/home/carol/.otp/carol.toml"
        );
        assert_eq!(
            expand_template("/var/lib/otp/${USER}-%u", "dave", "/h"),
            "/var/lib/otp/dave-dave"
        );
        // Never produced by a checked template, but defined all the same:
        // an unknown placeholder and a trailing '%' vanish.
        assert_eq!(expand_template("/é/%x/%", "u", "/h"), "/é//");
        assert_eq!(expand_template("/${FOO}/$BAR/x", "u", "/h"), "///x");
    }

    #[test]
    fn templates_take_only_the_known_placeholders() {
        for ok in [
            "/var/lib/otp/%u.toml",
            "%h/.pam_otp.toml",
            "/x/100%%",
            "${HOME}/.pam_otp.toml",
            "/var/lib/otp/${USER}",
            "${HOME}/${USER}/%u%%é",
            "/x/100%%u",
        ] {
            assert_eq!(check_template(ok), Ok(()), "{ok}");
        }
        let unknown = |p: &str| Err(TemplateError::UnknownPlaceholder(p.into()));
        for (bad, want) in [
            ("/x/%z", unknown("%z")),
            ("/x/%", unknown("%")),
            ("/x/%é", unknown("%é")),
            ("/var/lib/otp/${FOO}", unknown("${FOO}")),
            ("/var/lib/otp/${user}", unknown("${user}")),
            ("${HOME", unknown("${HOME")),
            ("/var/lib/otp/$USER.toml", unknown("$USER")),
            ("/x/$", unknown("$")),
            ("/x/$/y", unknown("$")),
            ("${HOMEDIR}/x", unknown("${HOMEDIR}")),
            ("relative.toml", Err(TemplateError::NotAbsolute)),
            ("~/.pam_otp.toml", Err(TemplateError::NotAbsolute)),
            ("%u/x", Err(TemplateError::NotAbsolute)),
            ("${USER}/x", Err(TemplateError::NotAbsolute)),
            ("", Err(TemplateError::NotAbsolute)),
            ("/x/a\nb", Err(TemplateError::ControlCharacters)),
        ] {
            assert_eq!(check_template(bad), want, "{bad:?}");
        }
        assert!(err("secret = \"/x/${FOO}\"")
            .starts_with("secret: \"/x/${FOO}\": \"${FOO}\" is not a placeholder"));
        let mut c = Config::default();
        assert!(c.apply_args(["secret=/var/lib/otp/$USER"]).is_err());
        assert!(c.apply_args(["secret=${HOME}/.pam_otp.toml"]).is_ok());
    }

    #[test]
    fn control_characters_are_found_in_ascii_and_beyond() {
        assert!(!has_control("Verification code: ", None));
        assert!(has_control("a\tb", None));
        assert!(has_control("a\u{7f}", None));
        assert!(has_control("é\u{85}", None));
        assert!(!has_control("é ü", None));
        assert!(!has_control("two\nlines", Some('\n')));
        assert!(has_control("two\nlines\r", Some('\n')));
    }
}
