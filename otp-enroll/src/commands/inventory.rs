//! `otp-enroll inventory import|list|remove` (root only): the vendor token
//! inventory (`crate::inventory`). Seeds never appear in the output.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use otp_core::key;
use otp_core::secret_file::OtpKind;

use crate::cli::{ImportFormat, ImportOpts, InventoryCommand};
use crate::commands::status::format_utc;
use crate::error::Error;
use crate::json;
use otp_core::config::Config;
use serde::Serialize;

use crate::inventory::{self, Entry, HardwareToken, Inventory, MAX_IMPORT_BYTES};
use crate::output::{quoted, say, shown};
use otp_enroll::vendor::{self, pskc, Choice, Format, Parsed};

/// Runs one inventory command on the inventory of `cfg`'s store; the
/// exit code.
pub fn run(cfg: &Config, command: InventoryCommand, now: u64) -> Result<i32, Error> {
    if !inventory::is_root() {
        return Err(Error::failed(inventory::NOT_ROOT));
    }
    match command {
        InventoryCommand::Import(o) => import(cfg, o, now),
        InventoryCommand::List { unassigned, json } => list(cfg, unassigned, json).map(|()| 0),
        InventoryCommand::Remove { serial } => remove(cfg, &serial).map(|()| 0),
    }
}

/// Reads a file given on the command line, at most `max` bytes, not a
/// FIFO or device (O_NONBLOCK, then a regular-file check).
fn read_input(path: &str, max: u64, what: &str) -> Result<Vec<u8>, Error> {
    let fail = |e: String| Error::failed(format!("{}: {e}; nothing was imported", shown(path)));
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(format!("cannot open the {what}: {e}")))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail(format!("the {what} is not a regular file")));
    }
    let mut bytes = Vec::new();
    (&file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(fail(format!(
            "the {what} is larger than {max} bytes (refused)"
        )));
    }
    Ok(bytes)
}

fn secret(o: &ImportOpts) -> Result<pskc::Secret, Error> {
    if let Some(hex) = &o.key {
        let k = key::decode_hex(hex.trim()).ok_or_else(|| Error::usage("--key is not hex"))?;
        if !matches!(k.len(), 16 | 24 | 32) {
            return Err(Error::usage(format!(
                "--key is {} bytes; an AES key is 16, 24 or 32 bytes (32, 48 or 64 hex digits)",
                k.len()
            )));
        }
        return Ok(pskc::Secret::Key(k));
    }
    if let Some(path) = &o.passphrase_file {
        let bytes = read_input(path, 4096, "passphrase file")?;
        // The first line; a trailing newline is not part of it.
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(Error::usage(format!(
                "--passphrase-file {}: the first line is empty",
                shown(path)
            )));
        }
        return Ok(pskc::Secret::Passphrase(line.to_vec()));
    }
    Ok(pskc::Secret::None)
}

/// The token as the inventory keeps it, with its start and expiry dates,
/// which become the token's own when it is assigned (`token --serial S
/// --code C`). A date before 1970 (negative) is no limit as a start and
/// long past as an expiry (such keys were skipped already).
fn stored(t: vendor::VendorToken) -> HardwareToken {
    HardwareToken {
        not_before: t.not_before.and_then(|s| u64::try_from(s).ok()),
        expires: t.expires.map(|e| u64::try_from(e).unwrap_or(0)),
        serial: t.serial,
        kind: t.kind,
        key: t.key,
        algorithm: t.algorithm,
        digits: t.digits,
        period: t.period,
        counter: t.counter,
    }
}

fn import(cfg: &Config, o: ImportOpts, now: u64) -> Result<i32, Error> {
    let secret = secret(&o)?;
    // Opened (and locked) first: a broken inventory refuses the import
    // before the vendor file is even read.
    let mut inv = Inventory::open(cfg)?;
    let bytes = read_input(&o.file, MAX_IMPORT_BYTES, "file")?;
    let refused = |why: String| {
        Error::refused(format!(
            "{}: refused ({why}); nothing was imported",
            shown(&o.file)
        ))
    };
    // The content decides, unless --format does: XML is PSKC.
    let detected = vendor::detect(&bytes).map_err(refused)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::failed(format!(
            "{}: not UTF-8 text; nothing was imported",
            shown(&o.file)
        ))
    })?;
    let format = match o.format {
        Some(ImportFormat::Pskc) => Format::Pskc,
        Some(ImportFormat::Csv) => Format::Csv,
        None => detected,
    };
    let parsed: Parsed = match format {
        Format::Pskc => pskc::parse(text, &secret),
        Format::Csv => {
            if !matches!(secret, pskc::Secret::None) {
                return Err(Error::usage(
                    "--key and --passphrase-file are for PSKC files; a CSV file is not encrypted",
                ));
            }
            vendor::csv::parse(text)
        }
    }
    // The parsers' reasons have what they quote from the file escaped.
    .map_err(refused)?;
    // An admin who gives a key expects a file whose seeds are
    // authenticated: the same file with its encryption stripped (every
    // secret in plain, no EncryptionKey, no MACMethod) must not pass.
    if !parsed.encrypted && !matches!(secret, pskc::Secret::None) {
        return Err(refused(
            "--key or --passphrase-file was given but the file has no encrypted values, \
             so nothing in it can be authenticated (an encrypted file stripped of its encryption looks \
             like this); import it without them only if you trust where it came from"
                .into(),
        ));
    }
    let source = Path::new(&o.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| o.file.clone())
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();

    let mut imported = 0usize;
    let mut skipped = 0usize;
    let mut errors = 0usize;
    for s in &parsed.skipped {
        say!("skipped {}: {}", s.what, s.why);
        skipped += 1;
        errors += 1;
    }
    let opts = vendor::Options {
        ignore_pin_policy: o.ignore_pin_policy,
    };
    let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
    for choice in vendor::select(parsed.tokens, now_signed, opts) {
        let accepted = match choice {
            Choice::Skip(s) => {
                say!("skipped {}: {}", s.what, s.why);
                skipped += 1;
                errors += 1;
                continue;
            }
            Choice::Take(a) => a,
        };
        let t = accepted.token;
        let serial = shown(&t.serial);
        let replacing = match inv.find(&t.serial) {
            None => false,
            Some(Entry {
                assigned_to: Some(user),
                ..
            }) => {
                say!(
                    "skipped {serial}: already in the inventory, assigned to {} (--replace never replaces an assigned token)",
                    shown(user)
                );
                skipped += 1;
                continue;
            }
            Some(_) if !o.replace => {
                say!("skipped {serial}: already in the inventory (--replace replaces it)");
                skipped += 1;
                continue;
            }
            Some(_) => true,
        };
        if !replacing && inv.entries().len() >= inventory::MAX_ENTRIES {
            say!(
                "skipped {serial}: the inventory is full ({} tokens)",
                inventory::MAX_ENTRIES
            );
            skipped += 1;
            errors += 1;
            continue;
        }
        let what = std::iter::once(t.describe())
            .chain(accepted.notes)
            .collect::<Vec<_>>()
            .join("; ");
        say!(
            "{} {serial} ({what})",
            if replacing { "replaced" } else { "imported" },
        );
        inv.put(Entry {
            token: stored(t),
            imported: now,
            source: source.clone(),
            assigned_to: None,
        });
        imported += 1;
    }
    if imported > 0 {
        inv.save()?;
    }
    say!("imported {imported}, skipped {skipped}");
    if imported == 0 && (errors > 0 || skipped == 0) {
        if skipped == 0 {
            say!("{}: no tokens in the file", shown(&o.file));
        }
        return Ok(1);
    }
    Ok(0)
}

/// `inventory list --json`: otp-enroll.inventory-list/1.
#[derive(Serialize)]
struct ListJson {
    schema: String,
    /// Where the inventory is (a path, or postgresql:inventory).
    location: String,
    /// Whether only the unassigned tokens are listed (--unassigned).
    unassigned_only: bool,
    tokens: Vec<EntryJson>,
}

/// One inventory entry, never its seed.
#[derive(Serialize)]
struct EntryJson {
    serial: String,
    #[serde(rename = "type")]
    kind: &'static str,
    algorithm: &'static str,
    digits: u8,
    /// TOTP: the step in seconds (null for HOTP).
    period: Option<u64>,
    /// HOTP: the counter codes are looked for from (null for TOTP).
    counter: Option<u64>,
    assigned_to: Option<String>,
    /// When it was imported.
    imported: u64,
    /// The vendor file's start and expiry dates (Unix seconds; null when
    /// it gave none): they become the token's `not_before` and `expires`
    /// when it is assigned.
    not_before: Option<u64>,
    expires: Option<u64>,
    /// The name of the file it was imported from.
    source: String,
}

fn list(cfg: &Config, unassigned: bool, as_json: bool) -> Result<(), Error> {
    let inv = Inventory::open(cfg)?;
    let rows: Vec<&Entry> = inv
        .entries()
        .iter()
        .filter(|e| !unassigned || e.assigned_to.is_none())
        .collect();
    if as_json {
        return json::print(&ListJson {
            schema: json::schema("inventory-list"),
            location: inv.path().to_string_lossy().into_owned(),
            unassigned_only: unassigned,
            tokens: rows
                .iter()
                .map(|e| {
                    let totp = e.token.kind == OtpKind::Totp;
                    EntryJson {
                        serial: e.token.serial.clone(),
                        kind: json::kind(e.token.kind),
                        algorithm: e.token.algorithm.as_str(),
                        digits: e.token.digits,
                        period: totp.then_some(e.token.period),
                        counter: (!totp).then_some(e.token.counter),
                        assigned_to: e.assigned_to.clone(),
                        imported: e.imported,
                        not_before: e.token.not_before,
                        expires: e.token.expires,
                        source: e.source.clone(),
                    }
                })
                .collect(),
        });
    }
    if rows.is_empty() {
        say!(
            "{}",
            if unassigned {
                "No unassigned tokens in the inventory."
            } else {
                "The inventory is empty."
            }
        );
        return Ok(());
    }
    let day = |t: u64| format_utc(t).get(..10).unwrap_or_default().to_string();
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|e| {
            [
                shown(&e.token.serial),
                e.token.kind.as_str().to_string(),
                e.token.digits.to_string(),
                match e.token.kind {
                    OtpKind::Totp => format!("{} s", e.token.period),
                    OtpKind::Hotp => format!("counter {}", e.token.counter),
                },
                e.assigned_to.as_deref().map_or_else(|| "-".into(), shown),
                day(e.imported),
                match (e.token.not_before, e.token.expires) {
                    (None, None) => "-".into(),
                    (Some(from), None) => format!("from {}", day(from)),
                    (None, Some(to)) => format!("until {}", day(to)),
                    (Some(from), Some(to)) => format!("{}..{}", day(from), day(to)),
                },
                shown(&e.source),
            ]
        })
        .collect();
    let head = [
        "SERIAL",
        "TYPE",
        "DIGITS",
        "PERIOD/COUNTER",
        "ASSIGNED TO",
        "IMPORTED",
        "VALID",
        "SOURCE",
    ];
    let mut widths = head.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 8]| {
        let mut out = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out
    };
    say!("{}", line(head));
    for row in &cells {
        say!("{}", line(row.each_ref().map(String::as_str)));
    }
    Ok(())
}

fn remove(cfg: &Config, serial: &str) -> Result<(), Error> {
    let mut inv = Inventory::open(cfg)?;
    match inv.find(serial) {
        None => {
            return Err(Error::failed(format!(
                "no token {} in the inventory ({})",
                quoted(serial),
                shown(&inv.path().to_string_lossy())
            )))
        }
        Some(Entry {
            assigned_to: Some(user),
            ..
        }) => {
            return Err(Error::refused(format!(
                "token {serial} is assigned to {user}: remove it from the user first (otp-enroll --user {user} remove); nothing was changed",
                serial = shown(serial),
                user = shown(user)
            )))
        }
        Some(_) => {}
    }
    inv.remove(serial);
    inv.save()?;
    say!("Removed token {} from the inventory.", shown(serial));
    Ok(())
}
