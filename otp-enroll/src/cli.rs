//! The command line, defined once (clap derive): parsing, `--help` and
//! `help COMMAND`, and through the hidden `--generate` the man page and the
//! shell completions. Each command's `long_about` is its whole reference
//! text: `otp-enroll help CMD` and otp-enroll(1) say the same.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use otp_core::otp::Algorithm;

use crate::error::Error;
use crate::output::shown;
use crate::qr::QrStyle;

/// The options every command takes, anywhere on the line.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Act for another user (root only). Files are created with that
    /// user's ownership.
    #[arg(long, global = true, value_name = "NAME", verbatim_doc_comment)]
    pub user: Option<String>,
    /// Configuration file (default /etc/security/pam_otp.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<String>,
    /// Secret file (default: the config's `secret`, ~/.pam_otp.toml;
    /// store = "home" only).
    ///
    /// Overrides the config's `secret` template (%u, %h, %%, ${USER} and
    /// ${HOME} allowed; any other placeholder is refused, as the module
    /// refuses it). Only for store = "home": refused under another store.
    #[arg(long, global = true, value_name = "PATH", verbatim_doc_comment)]
    pub secret_file: Option<String>,
}

fn algorithm() -> impl TypedValueParser<Value = Algorithm> {
    PossibleValuesParser::new(["SHA1", "SHA256", "SHA512"])
        .map(|a: String| Algorithm::parse(&a).unwrap_or_default())
}

/// `--since`: see [`crate::commands::audit::parse_since`].
fn since_date(s: &str) -> Result<u64, String> {
    crate::commands::audit::parse_since(s).ok_or_else(|| {
        "not a date: YYYY-MM-DD (UTC), or an RFC 3339 time with Z or an offset".to_string()
    })
}

fn qr_style() -> impl TypedValueParser<Value = QrStyle> {
    PossibleValuesParser::new(["utf8", "ansi", "none"]).map(|s: String| match s.as_str() {
        "utf8" => QrStyle::Utf8,
        "ansi" => QrStyle::Ansi,
        _ => QrStyle::None,
    })
}

#[derive(Args, Debug)]
pub struct NewOpts {
    /// Add this token beside the user's others (their emergency codes stay
    /// as they are); without --add or --force an existing token is kept
    /// and nothing is written.
    #[arg(long, verbatim_doc_comment)]
    pub add: bool,
    /// The token's id: 1 to 32 of A-Z a-z 0-9 . _ - (default "app", or
    /// "app2", "app3"... with --add).
    #[arg(long, value_name = "ID", verbatim_doc_comment)]
    pub id: Option<String>,
    /// Counter-based (HOTP) instead of time-based (TOTP).
    #[arg(long)]
    pub hotp: bool,
    /// Use this key instead of a random 160-bit one ('--secret -' reads it
    /// from standard input, not echoed on a terminal, so it stays out of
    /// the process list and the shell history).
    #[arg(long, value_name = "BASE32", verbatim_doc_comment)]
    pub secret: Option<String>,
    /// SHA1 (default; what most apps support), SHA256 or SHA512.
    #[arg(long, value_name = "A", value_parser = algorithm(), ignore_case = true,
          default_value = "SHA1", hide_default_value = true, hide_possible_values = true)]
    pub algorithm: Algorithm,
    /// 6 (default), 7 or 8.
    #[arg(long, value_name = "N", default_value_t = 6, hide_default_value = true,
          value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: u8,
    /// TOTP step in seconds (default 30).
    #[arg(
        long,
        value_name = "S",
        default_value_t = 30,
        hide_default_value = true
    )]
    pub period: u64,
    /// Shown in the app (default: the host name).
    #[arg(long, value_name = "I")]
    pub issuer: Option<String>,
    /// Account name in the app (default: user@host).
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// Emergency codes to create (default 5, 0 for none, at most 20).
    #[arg(long, value_name = "N", default_value_t = 5, hide_default_value = true)]
    pub scratch_codes: usize,
    /// QR code style (default: ansi on a terminal, else utf8).
    ///
    /// ansi: black on white, readable on dark and light terminals (the
    /// default on a terminal); utf8: plain half blocks, no colours (the
    /// default otherwise: the code is printed twice, once dark on light
    /// and once inverted, so that one of the two reads whether the
    /// terminal draws text dark on light or light on dark); or none.
    #[arg(long, value_name = "STYLE", value_parser = qr_style(), verbatim_doc_comment,
          hide_possible_values = true)]
    pub qr: Option<QrStyle>,
    /// Replace all of the user's tokens and emergency codes (and say which).
    #[arg(long)]
    pub force: bool,
    /// Save without asking for a code.
    #[arg(long)]
    pub no_confirm: bool,
    /// Do nothing (exit 0, no output) if a secret exists (a record holding
    /// only a temporary code is none), or for a plain user under store =
    /// "system"; for the login hook.
    #[arg(long, verbatim_doc_comment)]
    pub if_missing: bool,
    /// The token is valid from DATE on (YYYY-MM-DD, a day in UTC, or an
    /// RFC 3339 time with an offset); before it, it accepts nothing.
    #[arg(long, value_name = "DATE", verbatim_doc_comment)]
    pub not_before: Option<String>,
    /// The token accepts nothing from DATE on (YYYY-MM-DD: up to that
    /// day's 00:00:00 UTC, exclusive; or an RFC 3339 time with an offset).
    #[arg(long, value_name = "DATE", verbatim_doc_comment)]
    pub expires: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct TokenOpts {
    /// The serial number printed on the token.
    #[arg(long, value_name = "S")]
    pub serial: Option<String>,
    /// The token's seed: hex as vendors ship it, or base32:KEY ('-' reads
    /// it from standard input, not echoed on a terminal, keeping it out of
    /// the process list and the shell history); without it, from the
    /// inventory.
    #[arg(long, value_name = "HEX", verbatim_doc_comment)]
    pub secret: Option<String>,
    /// One code from the token.
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// A time-based token (default: counter-based, HOTP).
    #[arg(long)]
    pub totp: bool,
    /// TOTP step in seconds (default 30).
    #[arg(long, value_name = "S", default_value_t = otp_core::secret_file::DEFAULT_PERIOD,
          hide_default_value = true)]
    pub period: u64,
    /// HOTP: the counter to search from (default 0).
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub counter: u64,
    /// 6 (default), 7 or 8.
    #[arg(long, value_name = "N", default_value_t = 6, hide_default_value = true,
          value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: u8,
    /// SHA1 (default), SHA256 or SHA512.
    #[arg(long, value_name = "A", value_parser = algorithm(), ignore_case = true,
          default_value = "SHA1", hide_default_value = true, hide_possible_values = true)]
    pub algorithm: Algorithm,
    /// Replace a token of the user with the same serial (or associate an
    /// inventory token with the user again).
    #[arg(long, verbatim_doc_comment)]
    pub force: bool,
    /// The token is valid from DATE on (YYYY-MM-DD, a day in UTC, or an
    /// RFC 3339 time with an offset); before it, it accepts nothing.
    #[arg(long, value_name = "DATE", verbatim_doc_comment)]
    pub not_before: Option<String>,
    /// The token accepts nothing from DATE on (YYYY-MM-DD: up to that
    /// day's 00:00:00 UTC, exclusive; or an RFC 3339 time with an offset).
    #[arg(long, value_name = "DATE", verbatim_doc_comment)]
    pub expires: Option<String>,
}

/// `temp-code`'s options.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct TempCodeOpts {
    /// How long the code works: a number and a unit, s, m, h or d (30m,
    /// 8h, 2d; default 8h, at most 7d).
    #[arg(long, value_name = "DURATION", value_parser = duration,
          default_value = "8h", hide_default_value = true, verbatim_doc_comment,
          conflicts_with = "revoke")]
    pub valid: u64,
    /// How many logins it works for (default 1, at most 20).
    #[arg(long, value_name = "N", default_value_t = 1, hide_default_value = true,
          value_parser = clap::value_parser!(u32).range(1..=otp_core::secret_file::MAX_TEMP_CODE_USES as i64),
          conflicts_with = "revoke")]
    pub uses: u32,
    /// Remove the user's temporary code (the record keeps everything else).
    #[arg(long)]
    pub revoke: bool,
}

/// `--valid`: a number and a unit (s, m, h, d), from 1 minute to 7 days,
/// as seconds.
pub fn duration(text: &str) -> Result<u64, String> {
    let max = otp_core::secret_file::MAX_TEMP_CODE_VALID;
    let bad = || {
        "not a duration: a number and a unit, s, m, h or d (30m, 8h, 2d), from 1m to 7d".to_string()
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if secs < 60 {
        return Err(
            "too short: at least 1m (a code that expires before it is read is no use)".into(),
        );
    }
    if secs > max {
        return Err("too long: at most 7d (168h); make a new code when it runs out".into());
    }
    Ok(secs)
}

/// What `cli::parse` gives `main`: the command with its options.
#[derive(Debug)]
pub enum Command {
    New(NewOpts),
    Token(TokenOpts),
    Resync {
        token: Option<String>,
        codes: (String, String),
    },
    List {
        json: bool,
    },
    Status {
        enroll_on_login_query: bool,
        json: bool,
    },
    Scratch(usize),
    Unlock,
    Remove {
        token: Option<String>,
        yes: bool,
        force: bool,
    },
    /// `remove --orphans` (root): what deleted accounts left.
    RemoveOrphans {
        json: bool,
        yes: bool,
    },
    ImportGoogle {
        path: Option<String>,
        force: bool,
    },
    Reset {
        yes: bool,
    },
    /// `disable --token ID` (`disable: true`) or `enable --token ID`.
    Disable {
        token: String,
        disable: bool,
    },
    /// `expire --token ID DATE|never`.
    Expire {
        token: String,
        date: String,
    },
    /// `temp-code [--valid DURATION] [--uses N]` (root): `valid` in
    /// seconds; or `temp-code --revoke`.
    TempCode(TempCodeOpts),
    /// `require` (root): enroll at the next login.
    Require,
    /// `exempt [--until DATE] [--reason TEXT]` (root).
    Exempt {
        until: Option<String>,
        reason: Option<String>,
    },
    /// `unexempt` (root).
    Unexempt,
    Migrate {
        to: MigrateTo,
        all: bool,
    },
    /// `report`: every account and its state.
    Report {
        json: bool,
        home_timeout: u64,
    },
    Inventory(InventoryCommand),
    /// `db init`: create or upgrade the fleet database's schema.
    DbInit {
        conninfo: Option<String>,
    },
    /// `audit`: the record of changes and logins.
    Audit {
        user: Option<String>,
        since: Option<u64>,
        json: bool,
    },
    /// `--help`, `help CMD`, `--version`: the text to print.
    Help(String),
    /// The hidden `--generate`: the man page or a shell's completions.
    Generate(Generated),
}

impl Command {
    /// The command's name as the audit log records it (`command=`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::New(_) => "new",
            Command::Token(_) => "token",
            Command::Resync { .. } => "resync",
            Command::List { .. } => "list",
            Command::Status { .. } => "status",
            Command::Scratch(_) => "scratch",
            Command::Unlock => "unlock",
            Command::Remove { .. } | Command::RemoveOrphans { .. } => "remove",
            Command::ImportGoogle { .. } => "import-google",
            Command::Reset { .. } => "reset",
            Command::Disable { disable: true, .. } => "disable",
            Command::Disable { disable: false, .. } => "enable",
            Command::Expire { .. } => "expire",
            Command::TempCode(_) => "temp-code",
            Command::Require => "require",
            Command::Exempt { .. } => "exempt",
            Command::Unexempt => "unexempt",
            Command::Migrate { .. } => "migrate",
            Command::Report { .. } => "report",
            Command::Audit { .. } => "audit",
            Command::Inventory(InventoryCommand::Import(_)) => "inventory-import",
            Command::Inventory(InventoryCommand::List { .. }) => "inventory-list",
            Command::Inventory(InventoryCommand::Remove { .. }) => "inventory-remove",
            Command::DbInit { .. } => "db-init",
            Command::Help(_) => "help",
            Command::Generate(_) => "generate",
        }
    }
}

/// The store `migrate --to` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MigrateTo {
    System,
    Postgresql,
}

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generated {
    Man,
    Bash,
    Zsh,
    Fish,
}

/// The file format of `inventory import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Pskc,
    Csv,
}

#[derive(Args, Debug, PartialEq, Eq)]
pub struct ImportOpts {
    /// The vendor file.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// pskc or csv (default: the content decides: XML, after an optional
    /// UTF-8 byte order mark, is PSKC; anything else CSV).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        verbatim_doc_comment,
        hide_possible_values = true
    )]
    pub format: Option<ImportFormat>,
    /// PSKC: the pre-shared AES key, hex.
    #[arg(long, value_name = "HEX", conflicts_with = "passphrase_file")]
    pub key: Option<String>,
    /// PSKC: the passphrase (PBKDF2) is the first line of this file.
    #[arg(long, value_name = "F")]
    pub passphrase_file: Option<String>,
    /// Replace a serial already in the inventory (never one assigned to a
    /// user).
    #[arg(long, verbatim_doc_comment)]
    pub replace: bool,
    /// PSKC: import keys whose PIN policy has the PIN typed before or
    /// after each code (PINUsageMode Prepend or Append) without that PIN:
    /// pam_otp never checks it, so the code alone logs in and the PIN
    /// factor is dropped. Without it such keys are skipped.
    #[arg(long, verbatim_doc_comment)]
    pub ignore_pin_policy: bool,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum InventoryCommand {
    /// import a vendor file (PSKC or CSV)
    ///
    /// Imports a vendor file. PSKC (RFC 6030): plain keys, keys encrypted
    /// with a pre-shared AES-128/192/256-CBC key (--key, hex) or with a key
    /// derived by PBKDF2 from a passphrase (the first line of
    /// --passphrase-file); HOTP and TOTP key packages, with their serial,
    /// digits, counter or time step and hash. Every encrypted value must
    /// carry a ValueMAC and it is checked: a wrong key or passphrase, a MAC
    /// that does not match, XML that is not well-formed or that has a DTD
    /// (entities) refuse the whole file, with one message for every
    /// cryptographic failure. A file that declares encryption or a MAC and
    /// carries any secret in plain (PlainValue) is refused whole: the MAC
    /// covers encrypted values only, so a swapped plain seed would go
    /// unnoticed. For the same reason, --key or --passphrase-file given for
    /// a file with no encrypted value refuses it: an encrypted file
    /// stripped of its encryption looks exactly like that. Plain Counter
    /// and TimeInterval are accepted (a changed one only gives a token
    /// whose first code does not check). The MAC may be over the encrypted
    /// value (RFC 6030) or over the plain one (its drafts). The container's
    /// Version must be 1.0 (or absent); the layouts of RFC 6030's drafts
    /// (<Device>, <Data Name="SECRET">, their namespaces, ActivIdentity's
    /// files) are refused by name: pskc2pskc (package pskc-utils) converts
    /// them.
    ///
    /// A key's <Policy> (RFC 6030 section 5) is honoured: a key with a
    /// policy element or attribute the importer does not understand, whose
    /// KeyUsage list lacks OTP, that limits its uses
    /// (NumberOfTransactions), that puts its PIN into the computation
    /// (PINUsageMode Algorithmic), or that expired (Policy or DeviceInfo
    /// ExpiryDate, converted to UTC; a time without a zone is UTC) is
    /// skipped, saying why. A PIN typed before or after each code
    /// (Prepend, Append) skips the key unless --ignore-pin-policy. Start
    /// and expiry dates are shown on the key's line and kept: the token
    /// assigned (token --serial S --code C) accepts nothing outside them,
    /// in every store.
    ///
    /// CSV: lines serial,seed_hex[,hotp|totp[,digits[,period_or_counter]]],
    /// with # comments, blank lines and an optional header line; quoted
    /// fields ("ACME, Inc") are read as CSV reads them.
    ///
    /// The content decides the format unless --format is given: XML, after
    /// an optional UTF-8 byte order mark, is PSKC, whatever the file's name
    /// (multiOTP ships PSKC as .txt); anything else CSV; UTF-16 and UTF-32
    /// text is refused (convert it to UTF-8 with iconv). One line per entry
    /// says what happened; entries that cannot be used (no serial, not
    /// HOTP/TOTP, values out of range, a policy, a bad CSV line, named by
    /// its number) are skipped, and so is a serial found more than once
    /// among the entries that would be imported (all of them), and serials
    /// already in the inventory, which --replace replaces unless they are
    /// assigned to a user. The last line is "imported N, skipped M".
    ///
    /// Exit status 0 when something was imported or everything was already
    /// there, 1 when nothing could be imported (the file refused, or every
    /// entry skipped for a problem), 2 bad arguments.
    #[command(verbatim_doc_comment)]
    Import(ImportOpts),
    /// serial, type, digits, period or counter, user, dates and source
    ///
    /// A table of serial, type, digits, period or counter, the user a token
    /// is assigned to (- for none), import date, the vendor file's validity
    /// (FROM..UNTIL, "from FROM", "until UNTIL", or - when it gave none;
    /// days in UTC) and source file of every token. Seeds are never shown.
    ///
    /// --json (see JSON OUTPUT): "schema": "otp-enroll.inventory-list/1",
    /// "location" (where the inventory is), "unassigned_only", and
    /// "tokens", each with "serial", "type", "algorithm", "digits",
    /// "period" (TOTP) and "counter" (HOTP), "assigned_to", "imported",
    /// "not_before" and "expires" (Unix seconds, expires exclusive; null
    /// when the file gave none) and "source".
    #[command(verbatim_doc_comment)]
    List {
        /// Only the tokens not assigned to a user.
        #[arg(long)]
        unassigned: bool,
        /// One JSON object instead of the table (see JSON OUTPUT).
        #[arg(long)]
        json: bool,
    },
    /// delete an unassigned token
    ///
    /// Deletes an unassigned token; an assigned one is refused (remove it
    /// from the user first).
    #[command(verbatim_doc_comment)]
    Remove {
        /// The serial of the token.
        #[arg(value_name = "SERIAL")]
        serial: String,
    },
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// create or upgrade the schema and the roles
    ///
    /// Root only. Creates or upgrades the fleet database's schema (store =
    /// "postgresql"): the tables, the functions hosts and admins call, and
    /// the group roles pam_otp_host (what hosts connect as, or are members
    /// of: may only call functions, never read a seed or change a state
    /// row) and pam_otp_admin (what otp-enroll connects as,
    /// admin_conninfo), in one transaction, with the database owner's
    /// connection (default: the config's admin_conninfo). Running it again
    /// changes nothing; a newer version of pam_otp upgrades the schema in
    /// place; a database with a newer schema than this program is left
    /// alone. Then give each host a login role in pam_otp_host (see the
    /// admin guide, "The fleet": /usr/share/doc/libpam-otp/).
    #[command(verbatim_doc_comment)]
    Init {
        /// A libpq connection string ("host=db1 dbname=pam_otp
        /// user=postgres", "service=pam_otp_owner").
        #[arg(long, value_name = "C", verbatim_doc_comment)]
        conninfo: Option<String>,
    },
}

/// The subcommands as clap parses them (converted into [`Command`]).
#[derive(Subcommand, Debug)]
enum Sub {
    /// create a TOTP (or HOTP) secret, show it as a QR code, confirm it
    /// with one code, hand out emergency codes (the default); --add: one
    /// more token (a second phone) beside the others
    ///
    /// (the default) Creates a random 160-bit TOTP secret and prints it as
    /// a QR code of its otpauth:// Key URI (for Google Authenticator,
    /// FreeOTP, Aegis, Microsoft Authenticator...), the URI itself, the key
    /// in base32 (groups of four) and hex, and emergency codes. It then
    /// asks for one current code from the app (three tries) and saves the
    /// file only if it is right, so an unscanned secret can never lock
    /// anyone out; that code is then used up.
    ///
    /// With --add the new token goes beside the user's others (their
    /// emergency codes stay); --id names it (default "app", then "app2",
    /// "app3"...). Without --add it refuses to touch an existing file;
    /// --force replaces all of its tokens and says which.
    #[command(verbatim_doc_comment)]
    New(NewOpts),
    /// add a hardware token (HOTP, or TOTP with --totp): serial, seed, one
    /// code
    ///
    /// Adds a hardware token beside the user's others, its id being its
    /// serial: its seed (hex as vendors ship it, or base32:KEY) and one
    /// code from it. An HOTP code (the default) must match a counter within
    /// 1000 after --counter (default 0, at most 2^53 - 1, the highest
    /// counter a code can be at); the counter is stored past it. With
    /// --totp (and --period, default 30) the code must be within 10 steps
    /// of now; the step is used up and the token's clock offset learned.
    ///
    /// Without --secret (root), the token is taken from the inventory by
    /// its serial (otp-enroll inventory import): seed, type, algorithm,
    /// digits, period and counter as imported, and the inventory then shows
    /// it assigned to the user; a token assigned to someone else is
    /// refused. remove puts it back, unassigned, with the counter it
    /// reached.
    ///
    /// --secret - reads the seed from standard input (not echoed on a
    /// terminal), keeping it out of the process list and the shell history.
    /// --digits and --algorithm as for new; --force replaces a token of the
    /// user with the same serial.
    #[command(verbatim_doc_comment)]
    Token(TokenOpts),
    /// the user's tokens: id, type, serial, created, last used, state
    ///
    /// The user's tokens, one a line: id, type, serial, created, last used,
    /// state (active, disabled, not yet valid, expired, and the dates).
    /// Never a secret. Exit status 1 when the user has none.
    ///
    /// --json (see JSON OUTPUT): "schema": "otp-enroll.list/1", "user",
    /// "store", "location" (where the record is), "tokens", each token
    /// as status --json gives it, "temp_code" as status --json gives it
    /// (the text: a "temporary code:" line after the tokens), and
    /// "pending" and "exemption" as status --json gives them. Root also
    /// sees the mark of reset and require and an exemption below the table.
    #[command(verbatim_doc_comment)]
    List {
        /// One JSON object instead of the table (see JSON OUTPUT).
        #[arg(long)]
        json: bool,
    },
    /// HOTP: find the counter again from two consecutive codes
    ///
    /// HOTP: press the token twice and give both codes. Two consecutive
    /// codes within 10000 counters after the stored one set the counter
    /// past them and clear the lockout. Non-consecutive codes are refused.
    /// --token names the token; it is needed when the user has several HOTP
    /// tokens (see otp-enroll list). A TOTP token has no counter: unlock
    /// resets its learned drift.
    #[command(verbatim_doc_comment)]
    Resync {
        /// The token to resync (needed when the user has several HOTP
        /// tokens).
        #[arg(long, value_name = "ID", verbatim_doc_comment)]
        token: Option<String>,
        /// The first code.
        #[arg(value_name = "CODE1")]
        code1: String,
        /// The code the token shows next.
        #[arg(value_name = "CODE2")]
        code2: String,
    },
    /// what is set up (never the secret)
    ///
    /// Per token: id, type, serial, algorithm, digits, creation date, last
    /// code used, and its state when it is disabled or has dates; then the emergency codes left and the lockout state;
    /// never the secret; and, after reset or require, that an enrollment
    /// is pending, and an exemption (root only).
    /// Exit status 1 when not enrolled (no record, or one holding only a
    /// temporary code that is used up or expired).
    ///
    /// With --enroll-on-login-enabled it prints nothing and exits 0 only if
    /// the config has enroll_on_login = true, 1 if not (what the login hook
    /// /etc/profile.d/pam-otp.sh asks).
    ///
    /// --json (see JSON OUTPUT): "schema": "otp-enroll.status/1", "user",
    /// "store" (home, system or postgresql), "location" (where the record
    /// is), "enrolled", "version" (the record's format), "tokens",
    /// "emergency_codes" (how many are left), "failures" (the rate
    /// limit's count), "locked_until" (null when not locked), "pending"
    /// (the mark of reset and require; null for a plain user, who cannot
    /// see it) and "exemption" (exempt: "until", "granted" (Unix seconds),
    /// "by", "reason", and "active", whether a login now honours it; null
    /// when there is none or for a plain user). Each
    /// token: "id", "type", "serial", "algorithm", "digits", "period"
    /// (TOTP), "counter" (HOTP: the next one), "created", "last_used",
    /// "drift" (TOTP: the learned clock offset in steps), "state" (active,
    /// disabled, not_yet_valid or expired, at the command's time),
    /// "disabled", "not_before" and "expires" (Unix seconds; null when not
    /// set). "temp_code": null, or the temporary code (temp-code) as
    /// {"state" (active, used_up or expired), "expires", "uses_left",
    /// "created", "created_by"}, never the code; the text shows it as a
    /// "temporary code:" line.
    #[command(verbatim_doc_comment)]
    Status {
        /// For the login hook: print nothing; exit 0 if the config has
        /// enroll_on_login = true, 1 if not.
        #[arg(long, hide = true, conflicts_with = "json")]
        enroll_on_login_enabled: bool,
        /// One JSON object instead of the text (see JSON OUTPUT).
        #[arg(long)]
        json: bool,
    },
    /// print new one-time emergency codes (replacing the old ones)
    ///
    /// Prints N (default 5, at most 20) new emergency codes and replaces
    /// the old ones. Each works for one login. Keep them somewhere safe,
    /// away from your phone.
    #[command(verbatim_doc_comment)]
    Scratch {
        /// How many codes (default 5, at most 20).
        #[arg(
            short = 'n',
            value_name = "N",
            default_value_t = 5,
            hide_default_value = true
        )]
        n: usize,
    },
    /// clear the failed-attempt lockout and the learned clock drift
    ///
    /// Clears the failed-attempt count and lockout, and resets the TOTP
    /// clock drift learned at login to 0 (saying so when there was one).
    /// This is the way back when the real device's codes are refused
    /// because someone holding the key moved the learned drift away from
    /// it: the module moves it one step a day at most. Codes already used
    /// stay used. As root it also forgets the failure tally of a user
    /// without a token (root's <state_dir>/unenrolled/<user>.toml, or with
    /// store = "postgresql" the database's).
    #[command(verbatim_doc_comment)]
    Unlock,
    /// remove one token, or all (two-factor login stops for the user)
    ///
    /// With --token, removes that token and keeps the others and the
    /// emergency codes (the last token takes the file with it, unless a
    /// temporary code is there: it stays). Without it,
    /// deletes the secret file, all tokens and emergency codes: two-factor
    /// login stops for the user (or, with missing = "deny" in the config,
    /// their logins fail until they enroll again); a file with several
    /// tokens is deleted only with --force. A token from the inventory goes
    /// back to it, unassigned, with the counter it reached. Asks when
    /// standard input is a terminal, unless --yes or -y.
    ///
    /// --orphans (root, without --user): removes what deleted accounts
    /// left under their names in state_dir: records of the system store,
    /// exemptions, "enroll at next login" marks and failure tallies of
    /// users without a token, each of a name that is no account any more
    /// or made for a uid that is not the account's of that name now (a
    /// name deleted and given again: logins already ignore or refuse
    /// them). What records no uid (written by an older version) is
    /// removed only when its name is no account; a name the name service
    /// does not answer for is left alone. Prints each thing removed and
    /// why; --json (see JSON OUTPUT): "schema":
    /// "otp-enroll.remove-orphans/1", "store", "orphans" (each with
    /// "user", "kind" (record, exemption, pending_mark or
    /// unenrolled_tally), "recorded_uid", "account_uid" (null: no such
    /// account), "why", "removed" and "error") and "unanswered" (each
    /// with "user" and "error"). Exit status 1 when something could not
    /// be removed or a name was not answered for. With store =
    /// "postgresql" the same in the fleet database (records, marks,
    /// exemptions, tallies), judged against this host's name service,
    /// which must be the fleet's; each is removed only while it still
    /// records the uid it was found with, and recorded in the audit table
    /// (command "remove --orphans").
    #[command(verbatim_doc_comment)]
    Remove {
        /// Remove this token only.
        #[arg(long, value_name = "ID")]
        token: Option<String>,
        /// Do not ask.
        #[arg(short, long)]
        yes: bool,
        /// Remove all of several tokens.
        #[arg(long)]
        force: bool,
        /// (root) Remove what deleted accounts left (see above).
        #[arg(long, conflicts_with_all = ["token", "force"])]
        orphans: bool,
        /// With --orphans: one JSON object (see JSON OUTPUT).
        #[arg(long, requires = "orphans")]
        json: bool,
    },
    /// convert a ~/.google_authenticator file
    ///
    /// Converts a google-authenticator file (default ~/.google_authenticator
    /// of the user) into a pam_otp secret: key (read as leniently as
    /// google-authenticator does), TOTP or HOTP and counter, step size,
    /// clock skew, the time steps already used (DISALLOW_REUSE), emergency
    /// codes. The old file is left in place. Its WINDOW_SIZE and RATE_LIMIT
    /// are pam_otp config settings (totp_skew, hotp_window, [rate_limit]),
    /// and are reported next to the config's values, not copied.
    #[command(verbatim_doc_comment)]
    ImportGoogle {
        /// The file (default ~/.google_authenticator of the user).
        #[arg(value_name = "PATH")]
        path: Option<String>,
        /// Replace an existing pam_otp secret.
        #[arg(long)]
        force: bool,
    },
    /// (root, with --user) remove all of the user's tokens and emergency
    /// codes; they set up a new token at the next login
    ///
    /// Root only, and only with --user. Removes all of the user's tokens
    /// and emergency codes (the whole record, in the store the config
    /// names; hardware tokens from the inventory go back to it, unassigned,
    /// with the counter they reached, as with remove) and marks the user
    /// "enroll at next login": their next login sets up a new token as
    /// under missing = "enroll", whatever missing says, with the same
    /// first-factor rule. A user without tokens is only marked. The mark is
    /// root's file <state_dir>/pending/<user>, whatever the store; status
    /// shows it ("enrollment pending"), and a new token made for the user
    /// (new, token, import-google as root, or the login's enrollment)
    /// withdraws it. The mark is set before anything is removed, so a
    /// removal that fails leaves the tokens working. Asks when standard
    /// input is a terminal, unless --yes or -y.
    #[command(verbatim_doc_comment)]
    Reset {
        /// Do not ask.
        #[arg(short, long)]
        yes: bool,
    },
    /// stop a token from logging in, keeping it (enable undoes it)
    ///
    /// The token stays, with its counter and state, but accepts nothing
    /// until enable: a code of it is refused as a wrong code is (and
    /// counted for the rate limit), and the log says the token is
    /// disabled. A user whose every token is disabled is still enrolled:
    /// refused at login, never let in or offered enrollment as a user
    /// without a token; their emergency codes accept nothing either until
    /// a token is active again. list, status and report show it. With
    /// store = "postgresql" the database decides it for every host.
    #[command(verbatim_doc_comment)]
    Disable {
        /// The token (see otp-enroll list).
        #[arg(long, value_name = "ID")]
        token: String,
    },
    /// let a disabled token log in again
    ///
    /// Undoes disable: the token accepts codes again (within its dates),
    /// from where its counter and state were.
    #[command(verbatim_doc_comment)]
    Enable {
        /// The token (see otp-enroll list).
        #[arg(long, value_name = "ID")]
        token: String,
    },
    /// set or clear the date a token stops logging in
    ///
    /// From DATE on the token accepts nothing (logged as expired): DATE is
    /// YYYY-MM-DD, a day in UTC, the token working up to that day's
    /// 00:00:00 UTC (exclusive), or an RFC 3339 time with an offset
    /// (2027-01-15T09:00:00+01:00). never clears the date. Nothing reads
    /// TZ. A date at or before the token's not-before date is refused.
    /// Like a disabled token, an expired one keeps its state and a user
    /// whose every token expired is refused, not treated as without a
    /// token. With store = "postgresql" the database's clock decides.
    #[command(verbatim_doc_comment)]
    Expire {
        /// The token (see otp-enroll list).
        #[arg(long, value_name = "ID")]
        token: String,
        /// YYYY-MM-DD, an RFC 3339 time with an offset, or never.
        #[arg(value_name = "DATE|never")]
        date: String,
    },
    /// (root, with --user) a temporary code for a lost phone: 8 digits, for
    /// --uses logins within --valid; --revoke removes it
    ///
    /// Root only, and only with --user. Prints a new temporary code for the
    /// user, once: 8 digits that log them in at the code prompt as an
    /// emergency code does, --uses times (default 1, at most 20) until
    /// --valid has passed (a number and a unit, s, m, h or d: 30m, 8h, 2d;
    /// default 8h, at least 1m, at most 7d). It works whatever the state of
    /// the user's tokens (that is its point: the lost phone is disabled) and
    /// leaves them and the emergency codes alone; while no token is active
    /// the emergency codes still accept nothing. A wrong code counts for
    /// the rate limit as any code does. A user who has no token gets a
    /// record holding the code alone: while it is live they are not a user
    /// without a token (missing = "allow" does not let them in without a
    /// code, missing = "enroll" does not offer enrollment); once it is used
    /// up or expired they are. A new temporary code replaces the old one;
    /// --revoke removes it. Only a salted hash of it is kept (HMAC-SHA-256),
    /// with its expiry, the uses left, and when and by whom it was made;
    /// status, list and report show those, never the code. The record is
    /// written as version 2 with a [temp_code] table, which a module older
    /// than this one refuses (the login fails closed): upgrade every host
    /// first. With store = "postgresql" the code is kept in the database
    /// (its salted hash) and the database decides at each login, with its
    /// own clock, on every host: a use taken on one host is gone on all.
    ///
    /// The lost-phone recipe: otp-enroll --user NAME disable --token phone,
    /// then otp-enroll --user NAME temp-code, tell the user the code, and
    /// once they have the new phone, otp-enroll --user NAME new --add (or
    /// the user's own new --add under store = "home").
    #[command(verbatim_doc_comment)]
    TempCode(TempCodeOpts),
    /// (root, with --user) the user must set up a token at the next login,
    /// whatever missing and enforce_after say
    ///
    /// Root only, and only with --user. For a user without a token: leaves
    /// the mark reset leaves (root's file <state_dir>/pending/<user>), so
    /// that their next login enrolls them as under missing = "enroll",
    /// whatever missing and enforce_after say (no empty answer skips it),
    /// with the same first-factor rule; a new token withdraws the mark. An
    /// exemption of the user is withdrawn. For a user with an active token
    /// nothing changes (a code is asked at every login already; exit 0).
    /// For a user whose tokens are all disabled, expired or not yet valid
    /// it is refused (exit 1): a new token there would let whoever logs in
    /// next with the password replace the token an administrator just
    /// stopped; enable one (enable, expire --token ID never), or remove
    /// them with reset once the password is known to be the user's alone.
    /// status and report show the mark ("enrollment pending"). With store
    /// = "postgresql" the mark is the database's, with the account's uid.
    #[command(verbatim_doc_comment)]
    Require,
    /// (root, with --user) no code asked of the user until a date, at most
    /// max_exemption: --until DATE, --reason TEXT
    ///
    /// Root only, and only with --user. Until DATE (YYYY-MM-DD: up to that
    /// day's 00:00:00 UTC, exclusive; or an RFC 3339 time with an offset,
    /// 2027-01-15T09:00:00+01:00; default: max_exemption from now) the
    /// module lets the user in without a code, with or without tokens. It
    /// replaces the code only: rules with otp = "deny" still deny, and
    /// the login must show a first factor (a password module before
    /// pam_otp, a key or password sshd accepted first) or it is refused. A
    /// DATE more than max_exemption (config, default 30 days) from now, or
    /// not after now, is refused; a login ignores an exemption longer than
    /// max_exemption from when it was granted. Granting again replaces the
    /// user's exemption. Kept in root's file <state_dir>/exempt/<user>
    /// (until, granted, who granted it as the audit line says who, and
    /// --reason: at most 200 characters, no control characters), which a
    /// user cannot write under any store; every login it decides is logged
    /// with all of it. status and report show it. With store =
    /// "postgresql" it is kept in the database (pam_otp.exemptions),
    /// granted at the database's time and refused past its own
    /// max_exemption (settings.max_exemption, days, which only the
    /// database's owner changes) as well as this config's; a host honours
    /// it by the database's clock, and its own max_exemption may only
    /// shorten it.
    #[command(verbatim_doc_comment)]
    Exempt {
        /// The end of the exemption (default: max_exemption from now).
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Why, for the log and for status and report.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// (root, with --user) withdraw an exemption: a code is asked again
    ///
    /// Root only, and only with --user. Removes the user's exemption; exit
    /// 0 also when there was none (saying so).
    #[command(verbatim_doc_comment)]
    Unexempt,
    /// (root) copy users' home files into the system store or the fleet
    /// database: --to system|postgresql (--user NAME | --all)
    ///
    /// Root only. Copies each user's home file (the config's secret
    /// template, read as the user with the module's checks, under its lock)
    /// into the system store, <state_dir>/users/NAME.toml (root 0600), and
    /// checks that the copy reads back the same (a copy that does not is
    /// removed again). --to postgresql copies into the fleet database
    /// through admin_conninfo instead. --user NAME takes one user; --all
    /// takes every account the system enumerates (getent passwd; directory
    /// services may be set up not to enumerate). A user who already has a
    /// record there keeps it as it is: it is never overwritten.
    ///
    /// One line per user: copied (how many tokens and emergency codes), no
    /// home file, already in the system store, or skipped and why (an
    /// unsafe or unreadable home file, say); then a summary. The home files
    /// are left in place: once the config names the new store the module
    /// no longer reads them. Marks of reset stay as they are (into the
    /// database, they are copied: hosts look nowhere else). Logins between
    /// the copy and the change of the config update the home file only (a
    /// HOTP counter, used steps), so make the change right after the copy.
    /// Exit status 0 when nothing was skipped, 1 otherwise.
    #[command(verbatim_doc_comment)]
    Migrate {
        /// The store to copy into: system or postgresql.
        #[arg(long, value_enum, value_name = "STORE", hide_possible_values = true)]
        to: MigrateTo,
        /// Every account the system enumerates (getent passwd).
        #[arg(long)]
        all: bool,
    },
    /// (root) every account and its state: enrolled, pending, not
    /// enrolled, locked; counts at the end
    ///
    /// Root only. Every account that can log in (the accounts the system
    /// enumerates, getent passwd, whose shell /etc/shells lists and is not
    /// nologin or false) and every user the store holds a record or a
    /// reset mark for (also one without an account or a login shell), one
    /// a line, by name: the state (enrolled; pending: reset, to enroll at
    /// the next login; not enrolled; unreadable: something is there that
    /// cannot be used, and why, e.g. a record of the system store or the
    /// fleet made for the uid of an account of that name since deleted;
    /// skipped: the home did not answer in time),
    /// the tokens, when a code of any was last accepted, and whether the
    /// rate limit refuses every code now, until when, and an exemption
    /// (exempt until DATE, and its reason). Then the counts.
    /// Never a secret.
    ///
    /// Accounts come from the name service. Under SSSD, LDAP or winbind an
    /// enumeration usually lists the local accounts only (SSSD does not
    /// enumerate by default): when the passwd line of /etc/nsswitch.conf
    /// names a source other than files, compat, systemd, db or altfiles,
    /// the report says that the account list may be incomplete. Such an
    /// account is still listed when the store holds something of theirs.
    ///
    /// Under store = "home" each account's home is read as that user, with
    /// a login's checks, and given --home-timeout seconds to answer: a
    /// home that does not (an automount that hangs, an NFS server away, a
    /// lock held by a stuck login) is reported skipped and named at the
    /// end; after 32 such homes the rest are not tried. Under store =
    /// "system" the records are root's files in <state_dir>/users/. Under
    /// store = "postgresql" one query through the admin role
    /// (pam_otp.admin_census) gives every user the database knows, and the
    /// database judges the lock as its verify does: this host's
    /// rate_limit under the database's ceilings, by the database's clock.
    ///
    /// --json (see JSON OUTPUT): "schema": "otp-enroll.report/1", "time"
    /// (when the report was made), "store", "passwd_sources" (the passwd
    /// line's sources), "accounts_complete" (false when the list may be
    /// incomplete), "home_timeout" (seconds; null but under home),
    /// "users" and "counts". Each user: "user", "account" (whether the
    /// name service knows the name), "login_shell", "state" (enrolled,
    /// pending, not_enrolled, unreadable or skipped), "reason" (why
    /// unreadable or skipped), "exemption" (as status --json gives it;
    /// null when none), "pending" (reset's or require's mark, also beside
    /// tokens), "tokens" (each with "id", "type", "serial", "created",
    /// "last_used", "state" (active, disabled, not_yet_valid or expired),
    /// "not_before" and "expires"), "emergency_codes", "last_used", "failures",
    /// "locked_until" and "temp_code" (as status --json gives it; a
    /// record holding only a spent temporary code is not_enrolled, as a
    /// login treats it). "counts": "users", "enrolled", "locked" (of the
    /// enrolled), "pending", "not_enrolled", "unreadable" and "skipped".
    ///
    /// Exit status 0 when every account could be read, 1 when some were
    /// skipped or unreadable, or the report could not be made.
    #[command(verbatim_doc_comment)]
    Report {
        /// One JSON object instead of the table (see JSON OUTPUT).
        #[arg(long)]
        json: bool,
        /// store = "home": seconds each home is given to answer (default 2,
        /// 1 to 60).
        #[arg(long, value_name = "S", default_value_t = 2, hide_default_value = true,
              value_parser = clap::value_parser!(u64).range(1..=60), verbatim_doc_comment)]
        home_timeout: u64,
    },
    /// (root) create or upgrade the fleet database's schema and roles
    #[command(subcommand)]
    Db(DbCommand),
    /// (root) the record of changes and logins: --user NAME, --since DATE,
    /// --json
    ///
    /// Root only. Under store = "postgresql", the fleet database's audit
    /// table, oldest first, one line per row: the time (UTC, the
    /// database's clock), the kind (change: a change otp-enroll made;
    /// verify: a code a host asked the database to check; enroll: a first
    /// token created at a login or for a user who had none), then
    /// key="value" pairs: command, user, token, serial, result (a verify's
    /// verdict: totp, hotp, scratch accepted; wrong, replay, malformed,
    /// exhausted, locked, nothing refused), service and rhost (PAM_SERVICE
    /// and PAM_RHOST as the host's module read them), detail, db_role (the
    /// database role that connected), from (the address it connected
    /// from, or socket), and for a change what otp-enroll said of its
    /// caller, as claims (root can make them say anything): claimed_uid,
    /// claimed_login_uid (/proc/self/loginuid; unset), claimed_sudo_user,
    /// claimed_host. Then the number of rows. Logins that never reached
    /// the database (a skip rule, grace, a user without a token under
    /// missing = "allow") have no row; under missing = "deny" a wrong code
    /// of a user without a token, or of a name that is no account, has one
    /// (no token). Rows are kept at least the database's audit_days (default
    /// 365; see the admin guide, "The fleet").
    ///
    /// Under store = "home" or "system" there is no table: it says that
    /// the record is each host's syslog (facility authpriv) and exits 0.
    ///
    /// --user NAME: only that user's rows (the name need not be an account
    /// any more). --since DATE: rows from DATE on: YYYY-MM-DD (00:00 UTC)
    /// or an RFC 3339 time with Z or an offset (2027-01-15T08:00:00+01:00).
    /// --json: one object, {"schema": "otp-enroll.audit/1", "store",
    /// "record": "table" or "syslog", "facility" ("authpriv" for syslog,
    /// else null), "user", "since", "entries": [...] (null for syslog)};
    /// each entry has id, at (Unix seconds), kind,
    /// db_role, client_addr, command, user, token, serial, detail,
    /// service, rhost, result, accepted (verify rows: true or false; else
    /// null) and claims ({uid, login_uid, sudo_user, host} or null); exact
    /// values, JSON-escaped; absent values are null.
    #[command(verbatim_doc_comment)]
    Audit {
        /// Rows from this day (YYYY-MM-DD, UTC) or time (RFC 3339 with an
        /// offset) on.
        #[arg(long, value_name = "DATE", value_parser = since_date, verbatim_doc_comment)]
        since: Option<u64>,
        /// One JSON object (schema otp-enroll.audit/1).
        #[arg(long)]
        json: bool,
    },
    /// (root) vendor token files: the tokens waiting to be assigned
    ///
    /// The inventory (root only) holds hardware tokens as vendors ship
    /// their seeds, before an administrator assigns one to a user (otp-enroll
    /// token without --secret). It is the file
    /// <state_dir>/inventory/tokens.toml (state_dir from the config, default
    /// /var/lib/pam_otp), root's, mode 0600, in a directory of mode 0700,
    /// created on first use; a symlinked, foreign-owned or group/other
    /// accessible directory or file is refused, and a file that cannot be
    /// parsed is reported and left as it is. Every inventory command
    /// refuses to run for anyone but root before it reads anything. Seeds
    /// never appear in the output. --user and --secret-file have no meaning
    /// here.
    #[command(subcommand, verbatim_doc_comment)]
    Inventory(InventoryCommand),
}

/// otp-enroll: set up and manage one-time codes for pam_otp.
#[derive(Parser, Debug)]
#[command(
    name = "otp-enroll",
    version,
    about = "set up and manage one-time codes for pam_otp",
    after_help = AFTER_HELP,
    subcommand_value_name = "COMMAND",
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Sub>,
    /// `otp-enroll --hotp ...` is `otp-enroll new --hotp ...` (hidden
    /// here: `new --help` documents them).
    #[command(flatten)]
    new: NewOpts,
}

/// The man page's DESCRIPTION.
const DESCRIPTION: &str = "\
otp-enroll creates and manages the secret file that pam_otp(8) checks
one-time codes against (by default ~/.pam_otp.toml, mode 0600). A user has
one or more tokens (a phone app, a second phone, a hardware HOTP or TOTP
token), each with an id; a code of any of them logs in, and the emergency
codes and the rate limit are the user's. Users run it in their own shell;
root manages other users' tokens with --user. Without a command it runs
new. Every command that writes the file writes it as version 2 (a login
keeps a version 1 file at version 1). Every write is made with the user's
file-system identity, under a lock, as a new file renamed over the old one.

With store = \"system\" in the config, a user's tokens are root's file
<state_dir>/users/<user>.toml (mode 0600, directory 0700, state_dir
default /var/lib/pam_otp), out of the user's reach, and every command works
on it as root with --user (with the same care: no symlinks, a lock, a new
file renamed over the old one); with store = \"postgresql\" they are in the
fleet database, reached through admin_conninfo. A plain user's commands
there change nothing and say how enrollment happens (at the next login with
missing = \"enroll\" or after reset, or by an administrator), before any
secret is made or shown; status and list say that only root can read the
tokens; all exit with status 1 (new --if-missing, the login hook's, exits 0
quietly).

otp-enroll help COMMAND (or otp-enroll COMMAND --help) shows the part of
this page about one command.";

const AFTER_HELP: &str = "\
'otp-enroll help COMMAND' or 'otp-enroll COMMAND --help' for a command; man otp-enroll.
Exit status: 0 done, 1 failed (nothing was changed), 2 bad arguments.";

/// The whole command line as clap sees it: the one definition that
/// parsing, help, the man page and the completions are made from.
pub fn command() -> clap::Command {
    // Outside the derive, so that the completions (which offer hidden
    // options too) do not offer it.
    let generate = clap::Arg::new("generate")
        .long("generate")
        .value_parser(clap::builder::EnumValueParser::<Generated>::new())
        .help("Print the man page or a shell's completions")
        .hide(true);
    public_command().arg(generate)
}

/// The definition without `--generate`: what the completions offer.
fn public_command() -> clap::Command {
    // The options of the default command are accepted before any command
    // (`otp-enroll --hotp`) but documented under `new` only.
    let new_ids: Vec<clap::Id> = NewOpts::augment_args(clap::Command::new("new"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    Cli::command().mut_args(|a| {
        if new_ids.contains(a.get_id()) {
            a.hide(true)
        } else {
            a
        }
    })
}

/// Parses the arguments (without the program name).
pub fn parse(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(Global, Command), Error> {
    let argv = std::iter::once("otp-enroll".into()).chain(args);
    let mut cmd = command();
    let cli = cmd
        .try_get_matches_from_mut(argv)
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, m)));
    let (cli, matches) = match cli {
        Ok(cli) => cli,
        Err(e) => return clap_outcome(e).map(|c| (Global::default(), c)),
    };
    // An option of the default command (or --generate) before another
    // command would be lost: refused, as clap refuses a misplaced option.
    // (clap's args_conflicts_with_subcommands would refuse the global
    // options there too.)
    if let Some((sub, _)) = matches.subcommand() {
        let misplaced = cmd.get_arguments().find(|a| {
            !a.is_global_set()
                && matches.value_source(a.get_id().as_str())
                    == Some(clap::parser::ValueSource::CommandLine)
        });
        if let Some(a) = misplaced {
            let name = a.get_long().unwrap_or(a.get_id().as_str());
            return Err(Error::usage(format!(
                "--{name} cannot be used with {sub}: it is an option of {}",
                if name == "generate" {
                    "otp-enroll alone"
                } else {
                    "new"
                }
            )));
        }
    }
    let g = cli.global;
    let command = match cli.command {
        None => match matches.get_one::<Generated>("generate") {
            Some(what) => Command::Generate(*what),
            None => Command::New(cli.new),
        },
        Some(Sub::New(o)) => Command::New(o),
        Some(Sub::Token(o)) => Command::Token(o),
        Some(Sub::List { json }) => Command::List { json },
        Some(Sub::Resync {
            token,
            code1,
            code2,
        }) => Command::Resync {
            token,
            codes: (code1, code2),
        },
        Some(Sub::Status {
            enroll_on_login_enabled,
            json,
        }) => Command::Status {
            enroll_on_login_query: enroll_on_login_enabled,
            json,
        },
        Some(Sub::Scratch { n }) => Command::Scratch(n),
        Some(Sub::Unlock) => Command::Unlock,
        Some(Sub::Remove {
            orphans: true,
            yes,
            json,
            ..
        }) => {
            if g.user.is_some() || g.secret_file.is_some() {
                return Err(Error::usage(
                    "remove --orphans covers every name in state_dir: --user and --secret-file have no meaning there",
                ));
            }
            Command::RemoveOrphans { json, yes }
        }
        Some(Sub::Remove {
            token, yes, force, ..
        }) => Command::Remove { token, yes, force },
        Some(Sub::ImportGoogle { path, force }) => Command::ImportGoogle { path, force },
        Some(Sub::Reset { yes }) => Command::Reset { yes },
        Some(Sub::Disable { token }) => Command::Disable {
            token,
            disable: true,
        },
        Some(Sub::Enable { token }) => Command::Disable {
            token,
            disable: false,
        },
        Some(Sub::Expire { token, date }) => Command::Expire { token, date },
        Some(Sub::TempCode(o)) => Command::TempCode(o),
        Some(Sub::Require) => Command::Require,
        Some(Sub::Exempt { until, reason }) => Command::Exempt { until, reason },
        Some(Sub::Unexempt) => Command::Unexempt,
        Some(Sub::Migrate { to, all }) => {
            if g.user.is_some() == all {
                return Err(Error::usage(
                    "migrate needs --user NAME (one user) or --all (every account), not both",
                ));
            }
            if g.secret_file.is_some() {
                return Err(Error::usage(
                    "migrate reads the home files the config's `secret` names: --secret-file has no meaning there",
                ));
            }
            Command::Migrate { to, all }
        }
        Some(Sub::Report { json, home_timeout }) => {
            if g.user.is_some() || g.secret_file.is_some() {
                return Err(Error::usage(
                    "report covers every account: --user and --secret-file have no meaning there",
                ));
            }
            Command::Report { json, home_timeout }
        }
        Some(Sub::Db(DbCommand::Init { conninfo })) => {
            if g.user.is_some() || g.secret_file.is_some() {
                return Err(Error::usage(
                    "db commands act on the whole database: --user and --secret-file have no meaning there",
                ));
            }
            Command::DbInit { conninfo }
        }
        Some(Sub::Audit { since, json }) => {
            if g.secret_file.is_some() {
                return Err(Error::usage(
                    "audit reads the store's record: --secret-file has no meaning there",
                ));
            }
            Command::Audit {
                user: g.user.clone(),
                since,
                json,
            }
        }
        Some(Sub::Inventory(c)) => {
            if g.user.is_some() || g.secret_file.is_some() {
                return Err(Error::usage(
                    "inventory commands act on root's inventory: --user and --secret-file have no meaning there",
                ));
            }
            Command::Inventory(c)
        }
    };
    Ok((g, command))
}

/// What clap's "error" is: help or the version to print, or a usage error
/// (clap's message, its usage line and hint; exit status 2).
fn clap_outcome(e: clap::Error) -> Result<Command, Error> {
    let text = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(Command::Help(text)),
        // `otp-enroll db`: the command's help, as an error.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Err(Error::Syntax(format!(
            "a command is needed here:\n\n{}",
            text.trim_end()
        ))),
        _ => {
            // clap quotes the arguments as typed: escaped line by line, as
            // everything from input is before it reaches a terminal.
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            let lines: Vec<String> = text.trim_end().lines().map(shown).collect();
            Err(Error::Syntax(lines.join("\n")))
        }
    }
}

// ---- otp-enroll --generate -------------------------------------------

/// The man page (everything otp-enroll(1) says) or a shell's completions.
pub fn generate(what: Generated) -> Result<Vec<u8>, Error> {
    let mut cmd = public_command();
    let mut out = Vec::new();
    let shell = match what {
        Generated::Man => {
            man_page(cmd, &mut out).map_err(|e| Error::failed(format!("the man page: {e}")))?;
            return Ok(out);
        }
        Generated::Bash => clap_complete::Shell::Bash,
        Generated::Zsh => clap_complete::Shell::Zsh,
        Generated::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "otp-enroll", &mut out);
    Ok(out)
}

fn man_page(mut cmd: clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    use roff::{bold, italic, roman, Roff};
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .title("OTP-ENROLL")
        .section("1")
        .source(format!("pam_otp {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    // DESCRIPTION: kept out of `--help`, which lists the commands.
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]);
    text(&mut roff, Some(&DESCRIPTION.into()));
    // Each command in full: usage, the reference text, its options.
    roff.control("SH", ["COMMANDS"]);
    for sub in visible_commands(&cmd) {
        command_section(&mut roff, sub);
    }
    roff.to_writer(w)?;
    // OPTIONS (-h, -V) and GLOBAL OPTIONS.
    man.render_options_section(w)?;
    // JSON OUTPUT: the one convention of every --json (json.rs).
    let mut roff = Roff::new();
    roff.control("SH", ["JSON OUTPUT"]);
    text(&mut roff, Some(&crate::json::CONVENTION.into()));
    // The audit log: what every change leaves (audit.rs).
    roff.control("SH", ["AUDIT LOG"]);
    text(&mut roff, Some(&crate::audit::MAN.into()));
    roff.to_writer(w)?;
    w.extend_from_slice(MAN_EXTRA.as_bytes());
    return Ok(());

    fn command_section(roff: &mut Roff, sub: &clap::Command) {
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_string();
        roff.control("SS", [usage.as_str()]);
        text(roff, sub.get_long_about().or(sub.get_about()));
        let args: Vec<_> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set())
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .collect();
        if !args.is_empty() {
            roff.control("RS", []);
        }
        for a in &args {
            let mut line = Vec::new();
            let value = a.get_value_names().map(|v| v.join(" "));
            if a.is_positional() {
                line.push(italic(value.unwrap_or_default()));
            } else {
                if let Some(s) = a.get_short() {
                    line.push(bold(format!("-{s}")));
                    line.push(roman(if a.get_long().is_some() { ", " } else { " " }));
                }
                if let Some(l) = a.get_long() {
                    line.push(bold(format!("--{l}")));
                    line.push(roman(" "));
                }
                if a.get_num_args().is_some_and(|n| n.takes_values()) {
                    line.push(italic(value.unwrap_or_default()));
                }
            }
            roff.control("TP", []);
            roff.text(line);
            text_in(roff, a.get_long_help().or(a.get_help()), "sp");
        }
        if !args.is_empty() {
            roff.control("RE", []);
        }
        for s in visible_commands(sub) {
            command_section(roff, s);
        }
    }

    /// Hand-wrapped paragraphs: lines joined (roff fills them), `.PP`
    /// between paragraphs.
    fn text(roff: &mut Roff, s: Option<&clap::builder::StyledStr>) {
        text_in(roff, s, "PP");
    }

    /// `sep` between paragraphs: `PP`, or `sp` inside an indented item.
    fn text_in(roff: &mut Roff, s: Option<&clap::builder::StyledStr>, sep: &str) {
        let s = s.map(|s| s.to_string()).unwrap_or_default();
        for (i, para) in s.split("\n\n").enumerate() {
            if i > 0 {
                roff.control(sep, []);
            }
            let joined: Vec<&str> = para.lines().map(str::trim).collect();
            roff.text([roman(joined.join(" "))]);
        }
    }
}

/// The commands a reader is shown (not `help`).
pub fn visible_commands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// The sections clap does not write: what a reader looks for after the
/// commands and options. troff.
const MAN_EXTRA: &str = r#".SH FILES
.TP
.I ~/.pam_otp.toml
A user's tokens under \fBstore = "home"\fR (the config's \fBsecret\fR
template; the user's, 0600).
.TP
.I /var/lib/pam_otp/users/\fIuser\fP.toml
A user's tokens under \fBstore = "system"\fR (root, 0600).
.TP
.I /var/lib/pam_otp/pending/\fIuser\fP
The mark \fBreset\fR leaves: enroll at the next login (root).
.TP
.I /var/lib/pam_otp/inventory/tokens.toml
The inventory of hardware tokens (root, 0600).
.TP
.I /etc/security/pam_otp.toml
The configuration (\fB\-\-config\fR).
.TP
.I /etc/profile.d/pam-otp.sh
Runs \fBotp-enroll new \-\-if\-missing\fR in interactive login shells when
\fBenroll_on_login = true\fR (asked with \fBotp-enroll status
\-\-enroll\-on\-login\-enabled\fR).
.SH "EXIT STATUS"
0 done; 1 failed (nothing was changed), or \fBstatus\fR or \fBlist\fR found
no secret; 2 bad arguments.
.SH EXAMPLES
.nf
$ otp-enroll                      # set up your phone
# otp-enroll \-\-user alice token \-\-serial OATH0001234 \\
      \-\-secret \- \-\-code 755224 < seed.hex
$ otp-enroll new \-\-add \-\-id pixel    # a second phone
$ otp-enroll list
# otp-enroll \-\-user alice token \-\-totp \-\-serial TOTP0001 \\
      \-\-secret \- \-\-code 123456 < seed.hex
# otp-enroll \-\-user alice resync \-\-token OATH0001234 520489 403154
# otp-enroll \-\-user alice remove \-\-token pixel
# otp-enroll \-\-user alice unlock
# otp-enroll \-\-user alice reset      # lost phone: new token at next login
# otp-enroll migrate \-\-to system \-\-all
# otp-enroll inventory import acme-2026.pskc \-\-passphrase\-file /root/acme.pass
# otp-enroll inventory list \-\-unassigned
.fi
.SH SECURITY
Secrets and seeds never appear in logs or in the arguments of processes
\fBotp-enroll\fR starts; give them as \fB\-\-secret \-\fR (standard input,
not echoed on a terminal) to keep them out of the process list and the
shell history. \fBstatus\fR, \fBlist\fR and the inventory never show a
secret or a seed. Everything printed that came from input (serials, names,
paths, issuers) is escaped, so it cannot act on the terminal.
A user's file is read and written with that user's file-system identity,
never through a symlink, under a lock, as a new file synced and renamed
over the old one; root's files under \fI/var/lib/pam_otp\fR get the same
care, and the inventory is refused when its directory or file is
symlinked, foreign-owned or group/other accessible. \fBnew\fR saves only after one
right code from the new token, and where it cannot save it says so before
it shows any secret.
.SH "SEE ALSO"
.BR pam_otp (8),
.BR pam_otp.toml (5),
.BR oathtool (1)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Global, Command), Error> {
        parse(args.iter().map(std::ffi::OsString::from))
    }

    fn help(args: &[&str]) -> String {
        match p(args) {
            Ok((_, Command::Help(text))) => text,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn temp_code_options() {
        let opts = |args: &[&str]| match p(args) {
            Ok((_, Command::TempCode(o))) => Ok(o),
            Ok(other) => panic!("{args:?}: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        let o = opts(&["temp-code"]).unwrap();
        assert_eq!((o.valid, o.uses, o.revoke), (8 * 3600, 1, false));
        for (text, secs) in [
            ("1m", 60),
            ("30m", 1800),
            ("8h", 28_800),
            ("2d", 172_800),
            ("7d", 604_800),
            ("168h", 604_800),
            ("90s", 90),
        ] {
            assert_eq!(
                opts(&["temp-code", "--valid", text]).unwrap().valid,
                secs,
                "{text}"
            );
        }
        for bad in [
            "",
            "8",
            "h",
            "8 h",
            "8H",
            "--valid=-1h",
            "1.5h",
            "8hours",
            "59s",
            "0m",
            "8d",
            "604801s",
            "99999999999999999999d",
        ] {
            let args: &[&str] = match bad.strip_prefix("--valid=") {
                Some(_) => &["temp-code", bad],
                None => &["temp-code", "--valid", bad],
            };
            let e = opts(args).unwrap_err();
            assert!(
                e.contains("duration") || e.contains("too short") || e.contains("too long"),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(opts(&["temp-code", "--uses", "20"]).unwrap().uses, 20);
        for bad in ["0", "21", "-1", "x"] {
            assert!(opts(&["temp-code", "--uses", bad]).is_err(), "{bad}");
        }
        assert!(opts(&["temp-code", "--revoke"]).unwrap().revoke);
        assert!(opts(&["temp-code", "--revoke", "--uses", "2"]).is_err());
        assert!(opts(&["temp-code", "--revoke", "--valid", "1h"]).is_err());
    }

    fn generated(what: Generated) -> String {
        String::from_utf8(generate(what).unwrap()).unwrap()
    }

    /// clap's own consistency checks of the definition (names, ids,
    /// conflicts, defaults that parse): replaces a hand-kept list.
    #[test]
    fn definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn default_command_is_new_with_globals_anywhere() {
        let (g, c) = p(&["--user", "bob", "--no-confirm", "--qr", "none"]).unwrap();
        assert_eq!(g.user.as_deref(), Some("bob"));
        assert!(matches!(
            c,
            Command::New(NewOpts {
                no_confirm: true,
                qr: Some(QrStyle::None),
                ..
            })
        ));
        assert!(matches!(
            p(&[]).unwrap().1,
            Command::New(NewOpts {
                hotp: false,
                digits: 6,
                period: 30,
                scratch_codes: 5,
                algorithm: Algorithm::SHA1,
                qr: None,
                ..
            })
        ));
        assert!(matches!(
            p(&["--hotp", "--digits", "8", "--algorithm", "sha256"])
                .unwrap()
                .1,
            Command::New(NewOpts {
                hotp: true,
                digits: 8,
                algorithm: Algorithm::SHA256,
                ..
            })
        ));
        let (g, c) = p(&["status", "--config", "/x"]).unwrap();
        assert_eq!(g.config.as_deref(), Some("/x"));
        assert!(matches!(c, Command::Status { .. }));
        let (g, c) = p(&["--config", "/x", "new", "--secret", "-", "--user", "al"]).unwrap();
        assert_eq!(
            (g.config.as_deref(), g.user.as_deref()),
            (Some("/x"), Some("al"))
        );
        assert!(matches!(c, Command::New(NewOpts { secret: Some(ref s), .. }) if s == "-"));
        let (g, _) = p(&["remove", "--secret-file=/s", "-y"]).unwrap();
        assert_eq!(g.secret_file.as_deref(), Some("/s"));
        // An option of new before another command is an error, not lost.
        assert!(p(&["--hotp", "status"]).is_err());
    }

    #[test]
    fn subcommand_options_and_errors() {
        assert!(matches!(
            p(&["resync", "1", "2"]).unwrap().1,
            Command::Resync { token: None, codes } if codes == ("1".into(), "2".into())
        ));
        assert!(matches!(
            p(&["resync", "--token", "OATH1", "1", "2"]).unwrap().1,
            Command::Resync { token: Some(ref t), .. } if t == "OATH1"
        ));
        assert!(matches!(
            p(&["new", "--add", "--id", "phone2"]).unwrap().1,
            Command::New(NewOpts { add: true, id: Some(ref i), .. }) if i == "phone2"
        ));
        assert!(matches!(
            p(&["token", "--totp", "--period", "60"]).unwrap().1,
            Command::Token(TokenOpts {
                totp: true,
                period: 60,
                counter: 0,
                digits: 6,
                ..
            })
        ));
        assert!(matches!(
            p(&["token"]).unwrap().1,
            Command::Token(TokenOpts {
                period: otp_core::secret_file::DEFAULT_PERIOD,
                ..
            })
        ));
        assert!(matches!(
            p(&["list"]).unwrap().1,
            Command::List { json: false }
        ));
        assert!(matches!(
            p(&["list", "--json"]).unwrap().1,
            Command::List { json: true }
        ));
        assert!(matches!(
            p(&["status", "--json"]).unwrap().1,
            Command::Status {
                enroll_on_login_query: false,
                json: true
            }
        ));
        assert!(matches!(
            p(&["report"]).unwrap().1,
            Command::Report {
                json: false,
                home_timeout: 2
            }
        ));
        assert!(matches!(
            p(&["report", "--json", "--home-timeout", "10"]).unwrap().1,
            Command::Report {
                json: true,
                home_timeout: 10
            }
        ));
        assert!(matches!(
            p(&["scratch", "-n", "3"]).unwrap().1,
            Command::Scratch(3)
        ));
        assert!(matches!(p(&["scratch"]).unwrap().1, Command::Scratch(5)));
        assert!(matches!(
            p(&["status", "--enroll-on-login-enabled"]).unwrap().1,
            Command::Status {
                enroll_on_login_query: true,
                json: false
            }
        ));
        assert!(matches!(
            p(&["status"]).unwrap().1,
            Command::Status {
                enroll_on_login_query: false,
                json: false
            }
        ));
        assert!(matches!(
            p(&["import-google"]).unwrap().1,
            Command::ImportGoogle { path: None, .. }
        ));
        assert!(matches!(
            p(&["remove", "--yes"]).unwrap().1,
            Command::Remove {
                yes: true,
                token: None,
                force: false
            }
        ));
        assert!(matches!(
            p(&["remove", "--token", "phone", "--force"]).unwrap().1,
            Command::Remove { token: Some(ref t), force: true, .. } if t == "phone"
        ));
        assert!(matches!(
            p(&["--user", "bob", "reset", "-y"]).unwrap().1,
            Command::Reset { yes: true }
        ));
        assert!(matches!(
            p(&["migrate", "--to", "system", "--all"]).unwrap().1,
            Command::Migrate {
                to: MigrateTo::System,
                all: true
            }
        ));
        assert!(matches!(
            p(&["migrate", "--user", "bob", "--to", "postgresql"])
                .unwrap()
                .1,
            Command::Migrate {
                to: MigrateTo::Postgresql,
                all: false
            }
        ));
        assert!(matches!(
            p(&["db", "init", "--conninfo", "service=x"]).unwrap().1,
            Command::DbInit { conninfo: Some(ref c) } if c == "service=x"
        ));
        assert!(matches!(
            p(&["--generate", "man"]).unwrap().1,
            Command::Generate(Generated::Man)
        ));
        for bad in [
            &["list", "--token", "x"][..],
            &["status", "--add"],
            &["status", "--hotp"],
            &["resync", "1"],
            &["resync", "1", "2", "3"],
            &["frobnicate"],
            &["new", "--digits", "x"],
            &["new", "--digits", "300"],
            &["new", "--algorithm", "md5"],
            &["new", "--qr", "png"],
            &["new", "--enroll-on-login-enabled"],
            &["token", "--counter", "-1"],
            &["reset", "--force"],
            &["import-google", "a", "b"],
            &["help", "nope"],
            &["--user"],
            &["migrate", "--all"],
            &["migrate", "--to", "system"],
            &["migrate", "--to", "home", "--all"],
            &["migrate", "--to", "system", "--all", "--user", "bob"],
            &["migrate", "--to", "system", "--all", "--secret-file", "/x"],
            &["migrate", "--to", "system", "--all", "extra"],
            &["db"],
            &["db", "frob"],
            &["--user", "bob", "db", "init"],
            &["--generate", "pdf"],
            &["report", "--home-timeout", "0"],
            &["report", "--home-timeout", "61"],
            &["--user", "bob", "report"],
            &["report", "--secret-file", "/x"],
            &["status", "--json", "--enroll-on-login-enabled"],
            &["new", "--json"],
            &["--generate", "man", "status"],
        ] {
            match p(bad) {
                Err(e) => assert_eq!(e.exit_code(), 2, "{bad:?}: {e}"),
                Ok(c) => panic!("{bad:?}: {c:?}"),
            }
        }
    }

    #[test]
    fn inventory_commands() {
        let inv = |args: &[&str]| match p(args).unwrap() {
            (_, Command::Inventory(c)) => c,
            (_, other) => panic!("{other:?}"),
        };
        assert_eq!(
            inv(&[
                "--config",
                "/c",
                "inventory",
                "import",
                "f.xml",
                "--key",
                "00",
                "--replace"
            ]),
            InventoryCommand::Import(ImportOpts {
                file: "f.xml".into(),
                format: None,
                key: Some("00".into()),
                passphrase_file: None,
                replace: true,
                ignore_pin_policy: false,
            })
        );
        let (g, _) = p(&["inventory", "list", "--config", "/c"]).unwrap();
        assert_eq!(g.config.as_deref(), Some("/c"));
        assert_eq!(
            inv(&["inventory", "list", "--unassigned"]),
            InventoryCommand::List {
                unassigned: true,
                json: false
            }
        );
        assert_eq!(
            inv(&["inventory", "list", "--json"]),
            InventoryCommand::List {
                unassigned: false,
                json: true
            }
        );
        assert_eq!(
            inv(&["inventory", "remove", "S1"]),
            InventoryCommand::Remove {
                serial: "S1".into()
            }
        );
        assert!(matches!(
            inv(&["inventory", "import", "--format", "csv", "x"]),
            InventoryCommand::Import(ImportOpts {
                format: Some(ImportFormat::Csv),
                ..
            })
        ));
        for bad in [
            &["inventory"][..],
            &["inventory", "frob"],
            &["inventory", "import"],
            &["inventory", "import", "a", "b"],
            &[
                "inventory",
                "import",
                "a",
                "--key",
                "00",
                "--passphrase-file",
                "p",
            ],
            &["inventory", "import", "a", "--format", "xml"],
            &["inventory", "list", "--replace"],
            &["inventory", "remove"],
            &["inventory", "list", "--user", "bob"],
            &["--user", "bob", "inventory", "list"],
            &["--secret-file", "/x", "inventory", "remove", "S"],
        ] {
            match p(bad) {
                Err(e) => assert_eq!(e.exit_code(), 2, "{bad:?}: {e}"),
                Ok(c) => panic!("{bad:?}: {c:?}"),
            }
        }
    }

    #[test]
    fn help_for_every_command() {
        let top = help(&["--help"]);
        assert!(top.contains("Usage: otp-enroll"), "{top}");
        let cmd = command();
        for sub in visible_commands(&cmd) {
            let name = sub.get_name();
            assert!(top.contains(name), "--help lists {name}");
            let long = help(&[name, "--help"]);
            assert_eq!(long, help(&["help", name]), "{name}");
            assert!(
                long.contains(&format!("Usage: otp-enroll {name}")),
                "{long}"
            );
            // The long help is the man page's text: its first words.
            let about = sub
                .get_long_about()
                .or(sub.get_about())
                .unwrap()
                .to_string();
            let first = about
                .split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                long.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .contains(&first),
                "{name}: {long}"
            );
            assert!(help(&[name, "-h"]).contains(&format!("Usage: otp-enroll {name}")));
        }
        assert!(help(&["help", "inventory", "import"]).contains("ValueMAC"));
        assert!(help(&["--version"]).starts_with("otp-enroll "));
        // The login hook's option works but is not advertised as an option.
        assert!(!help(&["status", "--help"]).contains("  --enroll-on-login-enabled"));
        // new's options are documented under new, not twice.
        assert!(!top.contains("--hotp"));
        assert!(help(&["new", "--help"]).contains("--hotp"));
        assert!(!top.contains("--generate"));
    }

    #[test]
    fn usage_errors_name_the_problem() {
        let msg = |args: &[&str]| match p(args) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{args:?}: {c:?}"),
        };
        let m = msg(&["status", "--hotp"]);
        assert!(
            m.contains("'--hotp'") && m.contains("Usage: otp-enroll status"),
            "{m}"
        );
        assert!(m.contains("--help"), "a hint: {m}");
        assert!(msg(&["resync", "1"]).contains("<CODE2>"));
        assert!(msg(&["new", "--qr", "png"]).contains("utf8"));
        assert!(msg(&["new", "--algorithm", "md5"]).contains("SHA256"));
        assert!(msg(&["frobnicate"]).contains("'frobnicate'"));
        // Input is escaped before it reaches the terminal.
        let m = msg(&["frob\x1b[2Jnicate"]);
        assert!(!m.contains('\x1b'), "{m:?}");
    }

    /// The generated page is the whole reference: every command, with the
    /// sections clap does not write.
    #[test]
    fn man_page_has_every_command_and_section() {
        let man = generated(Generated::Man);
        fn all(cmd: &clap::Command, path: &str, man: &str) {
            for sub in visible_commands(cmd) {
                let name = format!("{path} {}", sub.get_name());
                assert!(
                    man.contains(&format!(".SS \"{name}")),
                    "{name} in the man page"
                );
                all(sub, &name, man);
            }
        }
        all(&command(), "otp-enroll", &man);
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "COMMANDS",
            "GLOBAL OPTIONS",
            "FILES",
            "EXIT STATUS",
            "EXAMPLES",
            "SECURITY",
            "JSON OUTPUT",
            "AUDIT LOG",
            "SEE ALSO",
        ] {
            let heading = if section.contains(' ') {
                format!(".SH \"{section}\"")
            } else {
                format!(".SH {section}")
            };
            assert!(man.contains(&heading), "{heading}");
        }
        for text in [
            "\\-\\-if\\-missing",
            "ValueMAC",
            "\\-\\-secret\\-file",
            "otp\\-enroll.COMMAND/1",
            "loginuid=",
        ] {
            assert!(man.contains(text), "{text}");
        }
        assert!(!man.contains("\\-\\-generate"));
    }

    #[test]
    fn completions_have_every_command() {
        let cmd = command();
        for shell in [Generated::Bash, Generated::Zsh, Generated::Fish] {
            let out = generated(shell);
            // How each shell's script offers a command as a candidate.
            let offered = |name: &str| match shell {
                Generated::Bash => format!(",{name})"),
                Generated::Zsh => format!("'{name}:"),
                _ => format!("-a \"{name}\""),
            };
            let mut names = Vec::new();
            for sub in visible_commands(&cmd) {
                names.push(sub.get_name());
                names.extend(visible_commands(sub).map(|s| s.get_name()));
            }
            assert!(names.len() > 13, "{names:?}");
            for name in names {
                assert!(out.contains(&offered(name)), "{shell:?}: {name}");
            }
            assert!(out.contains("secret-file"), "{shell:?}");
            assert!(out.contains("scratch-codes"), "{shell:?}");
            assert!(!out.contains("generate"), "{shell:?}");
        }
    }
}
