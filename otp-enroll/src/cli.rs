//! Command-line parsing (lexopt) and help texts.

use lexopt::prelude::*;
use otp_core::otp::Algorithm;

use crate::error::Error;
use crate::output::{quoted, shown};
use crate::qr::QrStyle;

pub const USAGE: &str = "\
otp-enroll: set up and manage one-time codes for pam_otp

Usage: otp-enroll [GLOBAL] [COMMAND] [OPTIONS]

Commands:
  new            create a TOTP (or HOTP) secret, show it as a QR code, confirm
                 it with one code, hand out emergency codes (the default);
                 --add: one more token (a second phone) beside the others
  token          add a hardware token (HOTP, or TOTP with --totp): serial,
                 seed, one code
  list           the user's tokens: id, type, serial, created, last used
  resync [--token ID] CODE1 CODE2
                 HOTP: find the counter again from two consecutive codes
  status         what is set up (never the secret)
  scratch        print new one-time emergency codes (replacing the old ones)
  unlock         clear the failed-attempt lockout and the learned clock drift
  remove [--token ID]
                 remove one token, or all (two-factor login stops for the user)
  import-google [PATH]
                 convert a ~/.google_authenticator file
  reset          (root, with --user) remove all of the user's tokens and
                 emergency codes; they set up a new token at the next login
  migrate --to system|postgresql (--user NAME | --all)
                 (root) copy users' home files into the system store or the
                 fleet database
  db init [--conninfo C]
                 (root) create or upgrade the fleet database's schema and roles
  inventory import|list|remove
                 (root) vendor token files: the tokens waiting to be assigned

Global options:
  --user NAME          act for another user (root only)
  --config PATH        config file (default /etc/security/pam_otp.toml)
  --secret-file PATH   secret file (default: the config's `secret`, ~/.pam_otp.toml;
                       store = \"home\" only)
  -h, --help           help; 'otp-enroll COMMAND --help' for a command
  -V, --version

Exit status: 0 done, 1 failed (nothing was changed), 2 bad arguments.
";

pub const NEW_HELP: &str = "\
Usage: otp-enroll [GLOBAL] new [OPTIONS]

Creates a secret, prints it as a QR code, an otpauth:// URI, base32 (groups
of four) and hex, and emergency codes; then asks for one current code from
your app and saves only if it is right (three tries), so an unscanned secret
can never lock you out.

Options:
  --add                add this token beside the user's others (their emergency
                       codes stay as they are); without --add or --force an
                       existing token is kept and nothing is written
  --id ID              the token's name (1-32 of A-Z a-z 0-9 . _ -; default
                       \"app\", or \"app2\", \"app3\"... with --add)
  --hotp               counter-based (HOTP) instead of time-based (TOTP)
  --secret BASE32      use this key instead of a random 160-bit one
                       ('--secret -' reads it from standard input, so it
                       stays out of the process list and shell history)
  --algorithm A        SHA1 (default; what most apps support), SHA256, SHA512
  --digits N           6 (default), 7 or 8
  --period S           TOTP step in seconds (default 30)
  --issuer I           shown in the app (default: the host name)
  --label L            account name in the app (default: user@host)
  --scratch-codes N    emergency codes to create (default 5, 0 for none)
  --qr utf8|ansi|none  QR code style (default: ansi on a terminal, else utf8)
  --force              replace all of the user's tokens and emergency codes
  --no-confirm         save without asking for a code
  --if-missing         do nothing (exit 0) if a secret exists; for login hooks
";

pub const TOKEN_HELP: &str = "\
Usage: otp-enroll [GLOBAL] token --serial S --code CODE [--secret HEX] [OPTIONS]

Adds a hardware token beside the user's other tokens; its id is its serial.
Without --secret (root), the token comes from the inventory (otp-enroll
inventory import): its seed, type, algorithm, digits, period and counter are
the vendor's, and the inventory then shows it assigned to the user; `remove`
returns it. With --secret, the seed is hex as vendors ship it, or base32:KEY. Give one code from the
token: an HOTP code must match a counter within 0..1000 after --counter (the
counter is stored past it); a TOTP code must be within 10 steps of now (the
token's clock offset is learned from it).

Options:
  --serial S        the serial number printed on the token
  --secret HEX      the token's seed (hex, or base32:KEY; '-' reads it from
                    standard input, keeping it out of the process list);
                    without it, from the inventory
  --code CODE       one code from the token
  --totp            a time-based token (default: counter-based, HOTP)
  --period S        TOTP step in seconds (default 30)
  --counter N       HOTP: the counter to search from (default 0)
  --digits N        6 (default), 7 or 8
  --algorithm A     SHA1 (default), SHA256, SHA512
  --force           replace a token of the user with the same serial (or
                    associate an inventory token with the user again)
";

pub const RESYNC_HELP: &str = "\
Usage: otp-enroll [GLOBAL] resync [--token ID] CODE1 CODE2

HOTP only: press the token twice and give both codes. They must be
consecutive and within 10000 counters after the stored one; the counter is
then set past them (and the lockout cleared). A TOTP token has no counter:
`unlock` resets its learned clock drift.

  --token ID   the token to resync (needed when the user has several HOTP
               tokens; see otp-enroll list)
";

pub const STATUS_HELP: &str = "\
Usage: otp-enroll [GLOBAL] status

Shows the type, serial, algorithm, digits, creation date, emergency codes
left and the lockout state, and whether root asked for a new enrollment at
the next login (otp-enroll reset). Never the secret. Exit status 1 if not
enrolled.

  --enroll-on-login-enabled
          print nothing; exit 0 if the config has enroll_on_login = true,
          1 if not (for /etc/profile.d/pam-otp.sh)
";

pub const LIST_HELP: &str = "\
Usage: otp-enroll [GLOBAL] list

The user's tokens, one a line: id, type, serial, created, last used. Never
a secret. Exit status 1 if the user has none.
";

pub const SCRATCH_HELP: &str = "\
Usage: otp-enroll [GLOBAL] scratch [-n N]

Prints N (default 5, at most 20) new emergency codes, each good for one
login, and replaces the old ones. Keep them somewhere safe, away from your phone.
";

pub const UNLOCK_HELP: &str = "\
Usage: otp-enroll [GLOBAL] unlock

Clears the failed-attempt count and lockout, and resets the TOTP clock
drift learned at login to 0 (the way back when the real device's codes are
refused because the learned drift was moved away from it).
";

pub const REMOVE_HELP: &str = "\
Usage: otp-enroll [GLOBAL] remove [--token ID] [--yes] [--force]

With --token ID: removes that token; the user's other tokens and emergency
codes stay. Without it: deletes the secret file, all tokens and emergency
codes: two-factor login stops for the user (or, with missing = \"deny\" in
the config, their logins fail until they enroll again). A user with several
tokens keeps them unless --force says to remove them all.
Asks first when standard input is a terminal, unless --yes (-y).
";

pub const IMPORT_HELP: &str = "\
Usage: otp-enroll [GLOBAL] import-google [PATH] [--force]

Converts a google-authenticator file (default ~/.google_authenticator of the
user) into a pam_otp secret file: key, TOTP/HOTP and counter, step size,
clock skew, used time steps, emergency codes. The old file is left in place.
Its window size and rate limit are settings of pam_otp's config, not of the
user's file: they are reported next to the config's values, not copied.

  --force    replace an existing pam_otp secret
";

pub const RESET_HELP: &str = "\
Usage: otp-enroll --user NAME reset [--yes]

Root only. Removes all of the user's tokens and emergency codes (the whole
record, in whichever store the config names; hardware tokens from the
inventory go back to it, unassigned, with their counter) and marks the user
\"enroll at next login\": their next login sets up a new token as under
missing = \"enroll\", whatever `missing` says. Works also for a user who has
no tokens (then it only marks them). `status` shows the mark; a new token
made with otp-enroll (new, token, import-google) withdraws it.
Asks first when standard input is a terminal, unless --yes (-y).
";

pub const MIGRATE_HELP: &str = "\
Usage: otp-enroll migrate --to system|postgresql (--user NAME | --all)

Root only. Copies each user's home file (the config's `secret` template,
read as the user with the usual checks) into the system store,
<state_dir>/users/NAME.toml (root 0600), or into the fleet database (the
config's admin_conninfo), and checks that the copy reads back the same. A
user who already has a record there keeps it as it is. The home files are
left in place; once the config names the new store they are no longer
read. Marks of `reset` stay as they are (into the database, they are
copied: hosts look nowhere else). Copy and switch the config soon after
one another: logins in between change the home file only (a HOTP counter,
used codes), not the copy.

  --to STORE    system or postgresql
  --user NAME   one user
  --all         every account the system enumerates (getent passwd)

One line per user: copied, no home file, already in the system store, or
skipped and why. Exit status 0 when nothing failed, 1 otherwise.
";

#[derive(Debug, Default)]
pub struct Global {
    pub user: Option<String>,
    pub config: Option<String>,
    pub secret_file: Option<String>,
}

#[derive(Debug)]
pub struct NewOpts {
    pub id: Option<String>,
    pub add: bool,
    pub hotp: bool,
    pub secret: Option<String>,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub issuer: Option<String>,
    pub label: Option<String>,
    pub scratch_codes: usize,
    pub qr: Option<QrStyle>,
    pub force: bool,
    pub no_confirm: bool,
    pub if_missing: bool,
}

impl Default for NewOpts {
    fn default() -> NewOpts {
        NewOpts {
            id: None,
            add: false,
            hotp: false,
            secret: None,
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
            issuer: None,
            label: None,
            scratch_codes: 5,
            qr: None,
            force: false,
            no_confirm: false,
            if_missing: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct TokenOpts {
    pub serial: Option<String>,
    pub secret: Option<String>,
    pub code: Option<String>,
    pub totp: bool,
    pub period: u64,
    pub counter: u64,
    pub digits: u8,
    pub algorithm: Algorithm,
    pub force: bool,
}

#[derive(Debug)]
pub enum Command {
    New(NewOpts),
    Token(TokenOpts),
    Resync {
        token: Option<String>,
        codes: (String, String),
    },
    List,
    Status {
        enroll_on_login_query: bool,
    },
    Scratch(usize),
    Unlock,
    Remove {
        token: Option<String>,
        yes: bool,
        force: bool,
    },
    ImportGoogle {
        path: Option<String>,
        force: bool,
    },
    Reset {
        yes: bool,
    },
    Migrate {
        to: MigrateTo,
        all: bool,
    },
    Inventory(InventoryCommand),
    /// `db init`: create or upgrade the fleet database's schema.
    DbInit {
        conninfo: Option<String>,
    },
    Help(&'static str),
    Version,
}

/// The store `migrate --to` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateTo {
    System,
    Postgresql,
}

fn number<T: std::str::FromStr>(parser: &mut lexopt::Parser, what: &str) -> Result<T, Error> {
    let v: String = parser.value()?.string()?;
    v.parse()
        .map_err(|_| Error::usage(format!("{what}: {} is not a number in range", quoted(&v))))
}

/// The subcommands, as the parser keeps them.
const COMMANDS: [&str; 11] = [
    "new",
    "token",
    "list",
    "resync",
    "status",
    "scratch",
    "unlock",
    "remove",
    "import-google",
    "reset",
    "migrate",
];

fn command_name(word: &str) -> Result<&'static str, Error> {
    COMMANDS
        .iter()
        .find(|c| **c == word)
        .copied()
        .ok_or_else(|| Error::usage(format!("unknown command {}", quoted(word))))
}

fn text(parser: &mut lexopt::Parser) -> Result<String, Error> {
    Ok(parser.value()?.string()?)
}

fn algorithm(parser: &mut lexopt::Parser) -> Result<Algorithm, Error> {
    let v = text(parser)?;
    Algorithm::parse(&v).ok_or_else(|| {
        Error::usage(format!(
            "--algorithm: {} is not SHA1, SHA256 or SHA512",
            quoted(&v)
        ))
    })
}

pub fn parse(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(Global, Command), Error> {
    let mut p = lexopt::Parser::from_args(args);
    let mut g = Global::default();
    let mut cmd: Option<&'static str> = None;
    let mut new = NewOpts::default();
    let mut token = TokenOpts {
        digits: 6,
        period: otp_core::secret_file::DEFAULT_PERIOD,
        ..TokenOpts::default()
    };
    let mut token_id: Option<String> = None;
    let mut positional: Vec<String> = Vec::new();
    let mut scratch_n = 5usize;
    let mut yes = false;
    let mut force = false;
    let mut enroll_on_login_query = false;
    let mut migrate_to: Option<String> = None;
    let mut migrate_all = false;
    let mut help = false;
    let mut version = false;

    while let Some(arg) = p.next()? {
        let sub = cmd.unwrap_or("new");
        match arg {
            Long("user") => g.user = Some(text(&mut p)?),
            Long("config") => g.config = Some(text(&mut p)?),
            Long("secret-file") => g.secret_file = Some(text(&mut p)?),
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => version = true,
            Value(v) if cmd.is_none() => {
                let v = v.string()?;
                if v == "inventory" {
                    return parse_inventory(p, g, help);
                }
                if v == "db" {
                    return parse_db(p, g, help);
                }
                if v == "help" {
                    help = true;
                    cmd = Some("help");
                } else {
                    cmd = Some(command_name(&v)?);
                }
            }
            Value(v) if cmd == Some("help") && positional.is_empty() => {
                // `otp-enroll help token` is `otp-enroll token --help`.
                let v = v.string()?;
                if v == "inventory" {
                    return Ok((g, Command::Help(INVENTORY_HELP)));
                }
                if v == "db" {
                    return Ok((g, Command::Help(DB_HELP)));
                }
                cmd = Some(command_name(&v)?);
                positional.push(v);
            }
            Value(v) => positional.push(v.string()?),
            Long("force") if matches!(sub, "new" | "token" | "import-google" | "remove") => {
                force = true;
            }
            Long("hotp") if sub == "new" => new.hotp = true,
            Long("add") if sub == "new" => new.add = true,
            Long("id") if sub == "new" => new.id = Some(text(&mut p)?),
            Long("token") if matches!(sub, "remove" | "resync") => token_id = Some(text(&mut p)?),
            Long("secret") if sub == "new" => new.secret = Some(text(&mut p)?),
            Long("algorithm") if sub == "new" => new.algorithm = algorithm(&mut p)?,
            Long("digits") if sub == "new" => new.digits = number(&mut p, "--digits")?,
            Long("period") if sub == "new" => new.period = number(&mut p, "--period")?,
            Long("issuer") if sub == "new" => new.issuer = Some(text(&mut p)?),
            Long("label") if sub == "new" => new.label = Some(text(&mut p)?),
            Long("scratch-codes") if sub == "new" => {
                new.scratch_codes = number(&mut p, "--scratch-codes")?
            }
            Long("qr") if sub == "new" => {
                new.qr = Some(match text(&mut p)?.as_str() {
                    "utf8" => QrStyle::Utf8,
                    "ansi" => QrStyle::Ansi,
                    "none" => QrStyle::None,
                    other => {
                        return Err(Error::usage(format!(
                            "--qr: {} is not utf8, ansi or none",
                            quoted(other)
                        )))
                    }
                })
            }
            Long("no-confirm") if sub == "new" => new.no_confirm = true,
            Long("if-missing") if sub == "new" => new.if_missing = true,
            Long("serial") if sub == "token" => token.serial = Some(text(&mut p)?),
            Long("secret") if sub == "token" => token.secret = Some(text(&mut p)?),
            Long("code") if sub == "token" => token.code = Some(text(&mut p)?),
            Long("counter") if sub == "token" => token.counter = number(&mut p, "--counter")?,
            Long("totp") if sub == "token" => token.totp = true,
            Long("period") if sub == "token" => token.period = number(&mut p, "--period")?,
            Long("digits") if sub == "token" => token.digits = number(&mut p, "--digits")?,
            Long("algorithm") if sub == "token" => token.algorithm = algorithm(&mut p)?,
            Short('n') if sub == "scratch" => scratch_n = number(&mut p, "-n")?,
            Long("yes") | Short('y') if matches!(sub, "remove" | "reset") => yes = true,
            Long("to") if sub == "migrate" => migrate_to = Some(text(&mut p)?),
            Long("all") if sub == "migrate" => migrate_all = true,
            Long("enroll-on-login-enabled") if sub == "status" => enroll_on_login_query = true,
            other => {
                return Err(Error::usage(format!(
                    "{} is not an option of '{sub}'",
                    shown(&other.unexpected().to_string())
                )))
            }
        }
    }
    let sub = cmd.unwrap_or("new");
    if version {
        return Ok((g, Command::Version));
    }
    if help {
        return Ok((
            g,
            Command::Help(match sub {
                "new" if cmd.is_some() => NEW_HELP,
                "token" => TOKEN_HELP,
                "resync" => RESYNC_HELP,
                "status" => STATUS_HELP,
                "list" => LIST_HELP,
                "scratch" => SCRATCH_HELP,
                "unlock" => UNLOCK_HELP,
                "remove" => REMOVE_HELP,
                "import-google" => IMPORT_HELP,
                "reset" => RESET_HELP,
                "migrate" => MIGRATE_HELP,
                _ => USAGE,
            }),
        ));
    }
    let positional_count = match sub {
        "resync" => 2,
        "import-google" => positional.len().min(1),
        _ => 0,
    };
    if positional.len() != positional_count {
        return Err(Error::usage(match sub {
            "resync" => "resync needs exactly two codes: otp-enroll resync CODE1 CODE2".to_string(),
            _ => format!(
                "unexpected argument {}",
                quoted(
                    &positional
                        .get(positional_count)
                        .cloned()
                        .unwrap_or_default()
                )
            ),
        }));
    }
    let command = match sub {
        "new" => Command::New(NewOpts { force, ..new }),
        "token" => Command::Token(TokenOpts { force, ..token }),
        "resync" => {
            let mut codes = positional.into_iter();
            match (codes.next(), codes.next()) {
                (Some(c1), Some(c2)) => Command::Resync {
                    token: token_id,
                    codes: (c1, c2),
                },
                _ => return Err(Error::usage("resync needs exactly two codes")),
            }
        }
        "status" => Command::Status {
            enroll_on_login_query,
        },
        "scratch" => Command::Scratch(scratch_n),
        "unlock" => Command::Unlock,
        "list" => Command::List,
        "remove" => Command::Remove {
            token: token_id,
            yes,
            force,
        },
        "import-google" => Command::ImportGoogle {
            path: positional.into_iter().next(),
            force,
        },
        "reset" => Command::Reset { yes },
        "migrate" => {
            let to = match migrate_to.as_deref() {
                Some("system") => MigrateTo::System,
                Some("postgresql") => MigrateTo::Postgresql,
                Some(other) => {
                    return Err(Error::usage(format!(
                        "--to: {} is not system or postgresql",
                        quoted(other)
                    )))
                }
                None => return Err(Error::usage("migrate needs --to system")),
            };
            if g.user.is_some() == migrate_all {
                return Err(Error::usage(
                    "migrate needs --user NAME (one user) or --all (every account), not both",
                ));
            }
            if g.secret_file.is_some() {
                return Err(Error::usage(
                    "migrate reads the home files the config's `secret` names: --secret-file has no meaning there",
                ));
            }
            Command::Migrate {
                to,
                all: migrate_all,
            }
        }
        _ => Command::Help(USAGE),
    };
    Ok((g, command))
}

// ---- otp-enroll db (root only) ---------------------------------------

pub const DB_HELP: &str = "\
Usage: otp-enroll [--config PATH] db init [--conninfo CONNINFO]

Root only. Creates the fleet database's schema (store = \"postgresql\"):
the tables, the functions hosts and admins call, and the group roles
pam_otp_host (what hosts connect as, or are members of: may only call
functions, never read a seed or change a state row) and pam_otp_admin (what
otp-enroll connects as, admin_conninfo). Run it with the database owner's
connection (default: the config's admin_conninfo). Running it again
changes nothing; a newer version of pam_otp upgrades the schema in place.
Then give each host a login role in pam_otp_host (see the README, Fleet).

  --conninfo C   a libpq connection string (\"host=db1 dbname=pam_otp
                 user=postgres\", \"service=pam_otp_owner\")
";

fn parse_db(
    mut p: lexopt::Parser,
    mut g: Global,
    mut help: bool,
) -> Result<(Global, Command), Error> {
    if g.user.is_some() || g.secret_file.is_some() {
        return Err(Error::usage(
            "db commands act on the whole database: --user and --secret-file have no meaning there",
        ));
    }
    let mut sub: Option<String> = None;
    let mut conninfo = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("config") => g.config = Some(text(&mut p)?),
            Short('h') | Long("help") => help = true,
            Long("conninfo") => conninfo = Some(text(&mut p)?),
            Value(v) if sub.is_none() => sub = Some(v.string()?),
            Value(v) => {
                return Err(Error::usage(format!(
                    "unexpected argument {}",
                    quoted(&v.string()?)
                )))
            }
            other => {
                return Err(Error::usage(format!(
                    "{} is not an option of 'db'",
                    shown(&other.unexpected().to_string())
                )))
            }
        }
    }
    if help {
        return Ok((g, Command::Help(DB_HELP)));
    }
    match sub.as_deref() {
        Some("init") => Ok((g, Command::DbInit { conninfo })),
        Some(other) => Err(Error::usage(format!(
            "unknown db command {} (init)",
            quoted(other)
        ))),
        None => Err(Error::usage("db needs a command: otp-enroll db init")),
    }
}

// ---- otp-enroll inventory (root only) --------------------------------

pub const INVENTORY_HELP: &str = "\
Usage: otp-enroll [--config PATH] inventory COMMAND

The inventory (root only) holds hardware tokens as vendors ship their
seeds, before they are assigned to users: <state_dir>/inventory/tokens.toml
(state_dir from the config, default /var/lib/pam_otp). Seeds are never shown.

Commands:
  import FILE [--format pskc|csv] [--key HEX | --passphrase-file F] [--replace]
        import a vendor file: PSKC (RFC 6030: plain, encrypted with a
        pre-shared AES-CBC key given as --key HEX, or with a passphrase
        read from the first line of --passphrase-file F; the MACs are
        checked) or CSV lines serial,seed_hex[,hotp|totp[,digits[,period_or_counter]]]
        ('#' comments allowed). The format is guessed from the name
        (.xml/.pskc/.pskcxml, .csv/.txt) or the contents unless --format.
        Each entry is reported: imported, or skipped and why (no serial,
        not HOTP/TOTP, bad values, its serial twice in the file, already
        in the inventory). A serial already there is replaced only with
        --replace, and never when assigned to a user. A wrong key or
        passphrase, a MAC that does not match, or a file that is not
        well-formed refuses the whole file.
        Exit status: 0 when something was imported or everything was
        already there; 1 when nothing could be imported (the file refused,
        or every entry skipped for a problem); 2 bad arguments.
  list [--unassigned]
        serial, type, digits, period or counter, the user it is assigned
        to, import date and source file of every token (--unassigned:
        only those not assigned)
  remove SERIAL
        delete an unassigned token (an assigned one is refused: remove it
        from the user first)
";

/// The file format of `inventory import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Pskc,
    Csv,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ImportOpts {
    pub file: String,
    pub format: Option<ImportFormat>,
    pub key: Option<String>,
    pub passphrase_file: Option<String>,
    pub replace: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InventoryCommand {
    Import(ImportOpts),
    List { unassigned: bool },
    Remove { serial: String },
}

/// The rest of the arguments after `inventory` (`help` is whether --help
/// came before it).
fn parse_inventory(
    mut p: lexopt::Parser,
    mut g: Global,
    mut help: bool,
) -> Result<(Global, Command), Error> {
    let no_target = || {
        Error::usage(
            "inventory commands act on root's inventory: --user and --secret-file have no meaning there",
        )
    };
    if g.user.is_some() || g.secret_file.is_some() {
        return Err(no_target());
    }
    let mut sub: Option<String> = None;
    let mut positional: Vec<String> = Vec::new();
    let mut import = ImportOpts {
        file: String::new(),
        format: None,
        key: None,
        passphrase_file: None,
        replace: false,
    };
    let mut unassigned = false;
    while let Some(arg) = p.next()? {
        let s = sub.as_deref().unwrap_or("");
        match arg {
            Long("config") => g.config = Some(text(&mut p)?),
            Long("user") | Long("secret-file") => return Err(no_target()),
            Short('h') | Long("help") => help = true,
            Value(v) if sub.is_none() => sub = Some(v.string()?),
            Value(v) => positional.push(v.string()?),
            Long("format") if s == "import" => {
                import.format = Some(match text(&mut p)?.as_str() {
                    "pskc" => ImportFormat::Pskc,
                    "csv" => ImportFormat::Csv,
                    other => {
                        return Err(Error::usage(format!(
                            "--format: {} is not pskc or csv",
                            quoted(other)
                        )))
                    }
                })
            }
            Long("key") if s == "import" => import.key = Some(text(&mut p)?),
            Long("passphrase-file") if s == "import" => {
                import.passphrase_file = Some(text(&mut p)?)
            }
            Long("replace") if s == "import" => import.replace = true,
            Long("unassigned") if s == "list" => unassigned = true,
            other => {
                return Err(Error::usage(format!(
                    "{} is not an option of 'inventory {s}'",
                    shown(&other.unexpected().to_string())
                )))
            }
        }
    }
    if help {
        return Ok((g, Command::Help(INVENTORY_HELP)));
    }
    let mut args = positional.into_iter();
    let (one, more) = (args.next(), args.next());
    if let Some(extra) = more {
        return Err(Error::usage(format!(
            "unexpected argument {}",
            quoted(&extra)
        )));
    }
    let command = match (sub.as_deref(), one) {
        (Some("import"), Some(file)) => {
            if import.key.is_some() && import.passphrase_file.is_some() {
                return Err(Error::usage(
                    "inventory import: give --key or --passphrase-file, not both",
                ));
            }
            InventoryCommand::Import(ImportOpts { file, ..import })
        }
        (Some("import"), None) => {
            return Err(Error::usage("inventory import needs a FILE"));
        }
        (Some("list"), None) => InventoryCommand::List { unassigned },
        (Some("remove"), Some(serial)) => InventoryCommand::Remove { serial },
        (Some("remove"), None) => {
            return Err(Error::usage("inventory remove needs a SERIAL"));
        }
        (Some("list"), Some(extra)) => {
            return Err(Error::usage(format!(
                "unexpected argument {}",
                quoted(&extra)
            )));
        }
        (None, _) => {
            return Err(Error::usage(
                "inventory needs a command: import, list or remove",
            ))
        }
        (Some(other), _) => {
            return Err(Error::usage(format!(
                "unknown inventory command {} (import, list or remove)",
                quoted(other)
            )))
        }
    };
    Ok((g, Command::Inventory(command)))
}

#[cfg(test)]
mod inventory_tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Global, Command), Error> {
        parse(args.iter().map(std::ffi::OsString::from))
    }

    fn inv(args: &[&str]) -> InventoryCommand {
        match p(args).unwrap() {
            (_, Command::Inventory(c)) => c,
            (_, other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn inventory_commands() {
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
            })
        );
        let (g, _) = p(&["inventory", "list", "--config", "/c"]).unwrap();
        assert_eq!(g.config.as_deref(), Some("/c"));
        assert_eq!(
            inv(&["inventory", "list", "--unassigned"]),
            InventoryCommand::List { unassigned: true }
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
            assert!(p(bad).is_err(), "{bad:?}");
        }
        for help in [
            &["inventory", "--help"][..],
            &["help", "inventory"],
            &["--help", "inventory", "list"],
        ] {
            assert!(
                matches!(p(help).unwrap().1, Command::Help(INVENTORY_HELP)),
                "{help:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Global, Command), Error> {
        parse(args.iter().map(std::ffi::OsString::from))
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
        let (g, c) = p(&["status", "--config", "/x"]).unwrap();
        assert_eq!(g.config.as_deref(), Some("/x"));
        assert!(matches!(c, Command::Status { .. }));
    }

    #[test]
    fn subcommand_options_and_errors() {
        assert!(matches!(
            p(&["resync", "1", "2"]).unwrap().1,
            Command::Resync { token: None, .. }
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
                ..
            })
        ));
        assert!(matches!(p(&["list"]).unwrap().1, Command::List));
        assert!(p(&["list", "--token", "x"]).is_err());
        assert!(p(&["status", "--add"]).is_err());
        assert!(p(&["resync", "1"]).is_err());
        assert!(matches!(
            p(&["scratch", "-n", "3"]).unwrap().1,
            Command::Scratch(3)
        ));
        assert!(p(&["status", "--hotp"]).is_err());
        assert!(p(&["frobnicate"]).is_err());
        assert!(p(&["new", "--digits", "x"]).is_err());
        assert!(p(&["new", "--algorithm", "md5"]).is_err());
        assert!(matches!(
            p(&["token", "--help"]).unwrap().1,
            Command::Help(TOKEN_HELP)
        ));
        assert!(matches!(p(&["--help"]).unwrap().1, Command::Help(USAGE)));
        assert!(matches!(
            p(&["help", "resync"]).unwrap().1,
            Command::Help(RESYNC_HELP)
        ));
        assert!(matches!(p(&["help"]).unwrap().1, Command::Help(USAGE)));
        assert!(p(&["help", "nope"]).is_err());
        assert!(matches!(
            p(&["new", "--help"]).unwrap().1,
            Command::Help(NEW_HELP)
        ));
        assert!(matches!(
            p(&["status", "--enroll-on-login-enabled"]).unwrap().1,
            Command::Status {
                enroll_on_login_query: true
            }
        ));
        assert!(p(&["new", "--enroll-on-login-enabled"]).is_err());
        assert!(p(&["new", "--digits", "300"]).is_err());
        assert!(p(&["token", "--counter", "-1"]).is_err());
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
            p(&["--user", "bob", "reset", "-y"]).unwrap().1,
            Command::Reset { yes: true }
        ));
        assert!(p(&["reset", "--force"]).is_err());
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
        for bad in [
            &["migrate", "--all"][..],
            &["migrate", "--to", "system"],
            &["migrate", "--to", "home", "--all"],
            &["migrate", "--to", "system", "--all", "--user", "bob"],
            &["migrate", "--to", "system", "--all", "--secret-file", "/x"],
            &["migrate", "--to", "system", "--all", "extra"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            p(&["help", "migrate"]).unwrap().1,
            Command::Help(MIGRATE_HELP)
        ));
        assert!(matches!(
            p(&["reset", "--help"]).unwrap().1,
            Command::Help(RESET_HELP)
        ));
        assert!(matches!(
            p(&["remove", "--token", "phone", "--force"]).unwrap().1,
            Command::Remove { token: Some(ref t), force: true, .. } if t == "phone"
        ));
    }
}
