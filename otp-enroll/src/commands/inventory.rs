//! `otp-enroll inventory import|list|remove` (root only): the vendor token
//! inventory (`crate::inventory`). Seeds never appear in the output.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use otp_core::key;
use otp_core::secret_file::OtpKind;

use crate::cli::{ImportFormat, ImportOpts, InventoryCommand};
use crate::commands::status::format_utc;
use crate::error::Error;
use otp_core::config::Config;

use crate::inventory::{self, pskc, Entry, Inventory, Parsed, MAX_IMPORT_BYTES};
use crate::output::{quoted, say, shown};

/// Runs one inventory command on the inventory of `cfg`'s store; the
/// exit code.
pub fn run(cfg: &Config, command: InventoryCommand, now: u64) -> Result<i32, Error> {
    if !inventory::is_root() {
        return Err(Error::failed(inventory::NOT_ROOT));
    }
    match command {
        InventoryCommand::Import(o) => import(cfg, o, now),
        InventoryCommand::List { unassigned } => list(cfg, unassigned).map(|()| 0),
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

fn guess_format(path: &str, text: &str) -> ImportFormat {
    let lower = path.to_ascii_lowercase();
    if [".xml", ".pskc", ".pskcxml"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return ImportFormat::Pskc;
    }
    if [".csv", ".txt"].iter().any(|e| lower.ends_with(e)) {
        return ImportFormat::Csv;
    }
    if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<')
    {
        ImportFormat::Pskc
    } else {
        ImportFormat::Csv
    }
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

fn describe(kind: OtpKind, digits: u8, period: u64, counter: u64) -> String {
    match kind {
        OtpKind::Hotp => format!("hotp, {digits} digits, counter {counter}"),
        OtpKind::Totp => format!("totp, {digits} digits, period {period} s"),
    }
}

fn import(cfg: &Config, o: ImportOpts, now: u64) -> Result<i32, Error> {
    let secret = secret(&o)?;
    // Opened (and locked) first: a broken inventory refuses the import
    // before the vendor file is even read.
    let mut inv = Inventory::open(cfg)?;
    let bytes = read_input(&o.file, MAX_IMPORT_BYTES, "file")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::failed(format!(
            "{}: not UTF-8 text; nothing was imported",
            shown(&o.file)
        ))
    })?;
    let format = o.format.unwrap_or_else(|| guess_format(&o.file, text));
    let parsed: Parsed = match format {
        ImportFormat::Pskc => pskc::parse(text, &secret),
        ImportFormat::Csv => {
            if !matches!(secret, pskc::Secret::None) {
                return Err(Error::usage(
                    "--key and --passphrase-file are for PSKC files; a CSV file is not encrypted",
                ));
            }
            inventory::csv::parse(text)
        }
    }
    // The parsers' reasons have what they quote from the file escaped.
    .map_err(|why| {
        Error::refused(format!(
            "{}: refused ({why}); nothing was imported",
            shown(&o.file)
        ))
    })?;
    // An admin who gives a key expects a file whose seeds are
    // authenticated: the same file with its encryption stripped (every
    // secret in plain, no EncryptionKey, no MACMethod) must not pass.
    if !parsed.encrypted && !matches!(secret, pskc::Secret::None) {
        return Err(Error::refused(format!(
            "{}: refused (--key or --passphrase-file was given but the file has no encrypted values, \
             so nothing in it can be authenticated (an encrypted file stripped of its encryption looks \
             like this); import it without them only if you trust where it came from); nothing was imported",
            shown(&o.file)
        )));
    }
    let source = Path::new(&o.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| o.file.clone())
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    let serial = |t: &inventory::HardwareToken| shown(&t.serial);

    let mut in_file: HashMap<String, usize> = HashMap::new();
    let serials = parsed
        .tokens
        .iter()
        .map(|t| &t.serial)
        .chain(parsed.skipped.iter().filter_map(|s| s.serial.as_ref()));
    for serial in serials {
        *in_file.entry(serial.clone()).or_default() += 1;
    }
    let mut imported = 0usize;
    let mut skipped = 0usize;
    let mut errors = 0usize;
    for s in &parsed.skipped {
        say!("skipped {}: {}", s.what, s.why);
        skipped += 1;
        errors += 1;
    }
    for t in parsed.tokens {
        let what = describe(t.kind, t.digits, t.period, t.counter);
        if in_file.get(&t.serial).copied().unwrap_or(0) > 1 {
            say!(
                "skipped {}: the serial is in the file more than once (none of them imported)",
                serial(&t)
            );
            skipped += 1;
            errors += 1;
            continue;
        }
        let replacing = match inv.find(&t.serial) {
            None => false,
            Some(Entry {
                assigned_to: Some(user),
                ..
            }) => {
                say!(
                    "skipped {}: already in the inventory, assigned to {} (--replace never replaces an assigned token)",
                    serial(&t),
                    shown(user)
                );
                skipped += 1;
                continue;
            }
            Some(_) if !o.replace => {
                say!(
                    "skipped {}: already in the inventory (--replace replaces it)",
                    serial(&t)
                );
                skipped += 1;
                continue;
            }
            Some(_) => true,
        };
        if !replacing && inv.entries().len() >= inventory::MAX_ENTRIES {
            say!(
                "skipped {}: the inventory is full ({} tokens)",
                serial(&t),
                inventory::MAX_ENTRIES
            );
            skipped += 1;
            errors += 1;
            continue;
        }
        say!(
            "{} {} ({what})",
            if replacing { "replaced" } else { "imported" },
            serial(&t)
        );
        inv.put(Entry {
            token: t,
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

fn list(cfg: &Config, unassigned: bool) -> Result<(), Error> {
    let inv = Inventory::open(cfg)?;
    let rows: Vec<&Entry> = inv
        .entries()
        .iter()
        .filter(|e| !unassigned || e.assigned_to.is_none())
        .collect();
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
    let cells: Vec<[String; 7]> = rows
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
                format_utc(e.imported)
                    .get(..10)
                    .unwrap_or_default()
                    .to_string(),
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
        "SOURCE",
    ];
    let mut widths = head.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 7]| {
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
