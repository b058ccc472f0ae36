//! The man pages are the only reference for the config keys
//! (pam_otp.toml(5)) and the module arguments (pam_otp(8)); README.md and
//! doc/admin-guide.md link to them and repeat none of it (issue 29). A
//! second copy drifts: the README's once omitted `store = "postgresql"`.
//!
//! The keys are read from the code, not listed here: the fields of
//! `otp-core/src/config.rs`'s `Raw*` structs (what the config parser
//! accepts) and the arguments `Config::apply_args` matches. Every one must
//! be in its man page, and none may have a **reference entry** in the
//! README or the guide. A reference entry is any of:
//!
//! 1. a table row whose first cell is a key (`| `totp_skew` | ...`, or
//!    `| `totp_skew = 1` | ...`): a table of keys;
//! 2. a list item that starts with a key in backticks (optionally with a
//!    value, optionally in bold) followed by `:`, a dash or `(`, or nothing:
//!    `- `split_pass`: one prompt ...`, a definition list;
//! 3. a fenced block with [`ANNOTATED_LINES`] or more lines that set a key
//!    and describe it in a trailing comment (`totp_skew = 1   # TOTP
//!    steps ...`, also commented out): an annotated listing of keys. A
//!    recipe sets the few keys it needs and may say why in a comment; a
//!    block annotating key after key is the reference again.
//!
//! Keys named in prose, in a recipe, or after a table name
//! (`in `[[rule]]`: `ttys``) are fine: that is how the guide links.
//! In-process: no root, no build of the module.

use std::fs;
use std::path::{Path, PathBuf};

/// The documents that must not repeat the reference.
const DOCUMENTS: &[&str] = &["README.md", "doc/admin-guide.md"];

/// Annotated key lines in one fenced block from which it is a reference
/// listing (the fleet recipe's config has 3).
const ANNOTATED_LINES: usize = 5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// (key, is a table) for every field of the config parser's `Raw*`
/// structs: `[rate_limit]`, `[postgresql]` and `[[rule]]` are tables.
fn config_keys(config_rs: &str) -> Vec<(String, bool)> {
    let mut keys = Vec::new();
    let mut in_raw = false;
    for line in config_rs.lines() {
        let t = line.trim();
        if t.starts_with("struct Raw") && t.ends_with('{') {
            in_raw = true;
            continue;
        }
        if in_raw && t == "}" {
            in_raw = false;
            continue;
        }
        if !in_raw || t.starts_with("//") || t.starts_with('#') {
            continue;
        }
        if let Some((name, ty)) = t.split_once(':') {
            if is_ident(name) {
                let table = ty.contains("Raw");
                keys.push((name.to_string(), table));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The module arguments `Config::apply_args` knows: `Some(("name", _))`
/// and `arg == "name"`.
fn module_args(config_rs: &str) -> Vec<String> {
    let start = config_rs
        .find("fn apply_args")
        .expect("Config::apply_args in config.rs");
    let body = &config_rs[start..];
    let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
    let mut args = Vec::new();
    for pat in ["Some((\"", "arg == \""] {
        let mut rest = body;
        while let Some(i) = rest.find(pat) {
            rest = &rest[i + pat.len()..];
            let name: String = rest.chars().take_while(|&c| c != '"').collect();
            if is_ident(&name) {
                args.push(name);
            }
        }
    }
    args.sort();
    args.dedup();
    args
}

/// The key a table cell or list item starts with: `` `key` ``,
/// `` `key = value` ``, `` `key=value` ``, optionally in `**`; and what
/// follows the closing backtick.
fn leading_key(text: &str) -> Option<(&str, &str)> {
    let t = text.trim_start();
    let t = t.strip_prefix("**").unwrap_or(t);
    let t = t.strip_prefix('`')?;
    let end = t.find('`')?;
    let inside = &t[..end];
    let after = &t[end + 1..];
    let after = after.strip_prefix("**").unwrap_or(after);
    let key = inside.split(['=', ' ']).next().unwrap_or("");
    let rest_ok = inside[key.len()..].trim_start();
    if is_ident(key) && (rest_ok.is_empty() || rest_ok.starts_with('=')) {
        Some((key, after))
    } else {
        None
    }
}

/// The key a line of a fenced block sets, when a trailing comment
/// describes it: `key = value  # ...`, or commented out, `# key = ...`.
fn annotated_key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix('#').map_or(t, str::trim_start);
    let (key, value) = t.split_once('=')?;
    let key = key.trim_end();
    if !is_ident(key) {
        return None;
    }
    // A comment after the value (a `#` inside a quoted value is no comment).
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return Some(key),
            _ => {}
        }
    }
    None
}

/// Every reference entry of `keys` in `doc`: (line number, what, key).
fn reference_entries(doc: &str, keys: &[String]) -> Vec<(usize, &'static str, String)> {
    let known = |k: &str| keys.iter().any(|x| x == k);
    let mut found = Vec::new();
    let mut block: Option<(usize, Vec<String>)> = None;
    for (i, line) in doc.lines().enumerate() {
        let n = i + 1;
        if line.trim_start().starts_with("```") {
            match block.take() {
                None => block = Some((n, Vec::new())),
                Some((start, annotated)) => {
                    if annotated.len() >= ANNOTATED_LINES {
                        found.push((
                            start,
                            "a fenced block annotating key after key",
                            annotated.join(", "),
                        ));
                    }
                }
            }
            continue;
        }
        if let Some((_, annotated)) = block.as_mut() {
            if let Some(k) = annotated_key(line).filter(|k| known(k)) {
                annotated.push(k.to_string());
            }
            continue;
        }
        let t = line.trim_start();
        if let Some(row) = t.strip_prefix('|') {
            let first = row.split('|').next().unwrap_or("");
            if let Some((k, after)) = leading_key(first) {
                if known(k) && after.trim().is_empty() {
                    found.push((n, "a table row whose first cell is a key", k.to_string()));
                }
            }
            continue;
        }
        let item = t
            .strip_prefix("- ")
            .or_else(|| t.strip_prefix("* "))
            .or_else(|| t.strip_prefix("+ "))
            .or_else(|| {
                let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                (digits > 0)
                    .then(|| t[digits..].strip_prefix(". "))
                    .flatten()
            });
        if let Some((k, after)) = item.and_then(leading_key) {
            let after = after.trim_start();
            let defines = after.is_empty()
                || [":", "—", "–", "- ", "(", "/"]
                    .iter()
                    .any(|p| after.starts_with(p));
            if known(k) && defines {
                found.push((n, "a list item defining a key", k.to_string()));
            }
        }
    }
    found
}

/// Config keys and module arguments, without the table names.
fn reference_keys() -> Vec<String> {
    let config_rs = read("otp-core/src/config.rs");
    let mut keys: Vec<String> = config_keys(&config_rs)
        .into_iter()
        .filter(|(_, table)| !table)
        .map(|(k, _)| k)
        .collect();
    keys.extend(module_args(&config_rs));
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn the_readme_and_the_guide_repeat_no_config_reference() {
    let keys = reference_keys();
    assert!(
        keys.len() >= 20 && keys.iter().any(|k| k == "ttys") && keys.iter().any(|k| k == "nullok"),
        "the keys read from config.rs look wrong: {keys:?}"
    );
    let mut bad = Vec::new();
    for name in DOCUMENTS {
        for (line, what, key) in reference_entries(&read(name), &keys) {
            bad.push(format!("{name}:{line}: {what} ({key})"));
        }
    }
    assert!(
        bad.is_empty(),
        "the config keys and module arguments are documented in pam_otp.toml(5) and \
         pam_otp(8) only; link there instead of repeating them:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_man_pages_document_every_config_key_and_module_argument() {
    let config_rs = read("otp-core/src/config.rs");
    let man5 = read("doc/man/pam_otp.toml.5");
    let man8 = read("doc/man/pam_otp.8");
    let mut missing = Vec::new();
    for (key, table) in config_keys(&config_rs) {
        // `.B totp_skew`, `.BR store " (...`, `.BR [postgresql] " helper (...`,
        // and for a table `.B [rate_limit]`, `.B [[rule]]`, or its keys'
        // `.BR [postgresql] " conninfo ...`.
        let documented = man5.lines().any(|l| {
            let Some(rest) = l.strip_prefix(".BR ").or_else(|| l.strip_prefix(".B ")) else {
                return false;
            };
            if table {
                return rest.starts_with(&format!("[{key}]"))
                    || rest.starts_with(&format!("[[{key}]]"));
            }
            let rest = match rest.strip_prefix('[') {
                Some(r) => r
                    .split_once(']')
                    .map_or("", |(_, r)| r.trim_start_matches(']'))
                    .trim_start()
                    .trim_start_matches('"')
                    .trim_start(),
                None => rest,
            };
            rest.split([' ', '"']).next() == Some(key.as_str())
        });
        if !documented {
            missing.push(format!("pam_otp.toml(5): config key {key}"));
        }
    }
    let synopsis = &man8[..man8.find(".SH DESCRIPTION").unwrap_or(man8.len())];
    for arg in module_args(&config_rs) {
        let documented = synopsis.lines().any(|l| {
            l.strip_prefix(".RB [ ")
                .is_some_and(|r| r.split(['=', ' ', ']']).next() == Some(arg.as_str()))
        });
        if !documented {
            missing.push(format!("pam_otp(8) SYNOPSIS: module argument {arg}"));
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}

/// The checks themselves: each shape of reference entry is found, and a
/// recipe, a key in prose and the upgrade list's form are not.
#[test]
fn reference_entries_are_told_from_recipes_and_prose() {
    let keys: Vec<String> = [
        "store",
        "secret",
        "missing",
        "default",
        "totp_skew",
        "hotp_window",
        "split_pass",
        "ttys",
        "users",
        "otp",
        "conninfo",
    ]
    .map(String::from)
    .to_vec();
    let reference = "\
```toml
store   = \"home\"              # where tokens live
secret  = \"%h/.pam_otp.toml\"  # path template
missing = \"deny\"              # user has no token
default = \"require\"           # when no rule matches
totp_skew   = 1               # TOTP steps
# ttys = [\"tty[0-9]*\"]        # glob patterns
```

| key | meaning |
|---|---|
| `hotp_window` | HOTP look-ahead |

- `split_pass`: one prompt, \"Password & verification code: \"
- **`totp_skew = 1`** (default) steps either side
";
    let found: Vec<(usize, String)> = reference_entries(reference, &keys)
        .into_iter()
        .map(|(n, _, k)| (n, k))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                1,
                "store, secret, missing, default, totp_skew, ttys".to_string()
            ),
            (12, "hotp_window".to_string()),
            (14, "split_pass".to_string()),
            (15, "totp_skew".to_string()),
        ]
    );
    let recipes_and_prose = "\
```toml
store = \"postgresql\"
missing = \"enroll\"            # users enroll at their first login
[postgresql]
conninfo = \"service=pam_otp\"  # the default
[[rule]]                      # root at the console
users = [\"root\"]
ttys = [\"tty[0-9]*\"]          # add ttyS for a serial console
otp = \"skip\"
```

| stack | how |
|---|---|
| `split_pass` stacks | the first line asks |

- in `[[rule]]`: `ttys` (patterns on `PAM_TTY`);
- `store = \"system\"` means the user cannot read the key, so:
With `missing = \"enroll\"` a user is set up at login; `split_pass`: see pam_otp(8).
";
    assert_eq!(reference_entries(recipes_and_prose, &keys), vec![]);
}
