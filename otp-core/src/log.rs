//! Logging to syslog (facility authpriv) without ever blocking or failing.
//!
//! A datagram is sent to `/dev/log` with `MSG_DONTWAIT`: no syslog
//! daemon, a full queue or any other error means the line is dropped, never
//! that the login waits or fails. The daemon stamps the time. Values from
//! the outside (user names, host names) are quoted with control, format
//! and separator characters escaped (see [`push_clean`]), so a crafted name
//! cannot forge, break, reorder or hide part of a log line.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{sendto, MsgFlags, UnixAddr};

use crate::text::push_decimal;

const LOG_AUTHPRIV: u8 = 10 << 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

/// Where lines go: `/dev/log` in production, any socket path in tests.
pub struct Logger {
    ident: String,
    socket_path: &'static str,
}

impl Logger {
    /// `ident` as pam_syslog writes it, e.g. `pam_otp(sshd:auth)`.
    pub fn new(service: &str) -> Logger {
        let mut ident = String::with_capacity(24 + service.len());
        ident.push_str("pam_otp(");
        push_clean(&mut ident, service);
        ident.push_str(":auth)");
        Logger {
            ident,
            socket_path: "/dev/log",
        }
    }

    pub fn log(&self, level: Level, message: &str) {
        let line = format_line(&self.ident, level, message);
        // MSG_DONTWAIT on this one send rather than a non-blocking socket:
        // the same never-wait, without the ioctl that std's
        // set_nonblocking would add to the symbols the loader binds.
        let (Ok(sock), Ok(addr)) = (UnixDatagram::unbound(), UnixAddr::new(self.socket_path))
        else {
            return;
        };
        let _ = sendto(
            sock.as_raw_fd(),
            line.as_bytes(),
            &addr,
            MsgFlags::MSG_DONTWAIT,
        );
    }
}

/// `<priority>ident[pid]: message`, as syslog(3) sends it (the daemon
/// adds the time).
fn format_line(ident: &str, level: Level, message: &str) -> String {
    let mut line = String::with_capacity(ident.len() + message.len() + 16);
    line.push('<');
    push_decimal(&mut line, i64::from(LOG_AUTHPRIV | level as u8));
    line.push('>');
    line.push_str(ident);
    line.push('[');
    push_decimal(&mut line, i64::from(std::process::id()));
    line.push_str("]: ");
    line.push_str(message);
    line
}

/// The characters of general category Cf (format) in Unicode 17.0, as
/// inclusive ranges of code points, sorted (from the UCD's
/// DerivedGeneralCategory.txt; std has no general category, and this is
/// no reason for a dependency). They are invisible, and some act on the
/// text around them:
/// - U+00AD soft hyphen;
/// - U+0600..U+0605, U+061C (Arabic letter mark), U+06DD, U+070F,
///   U+0890..U+0891, U+08E2: Arabic and Syriac number and format signs;
/// - U+180E Mongolian vowel separator;
/// - U+200B..U+200F: zero-width space, non-joiner and joiner, the LRM and
///   RLM marks;
/// - U+202A..U+202E: the bidi embeddings and overrides (LRE, RLE, PDF,
///   LRO, RLO), which reorder what follows them on the line;
/// - U+2060..U+2064 (word joiner, invisible operators) and U+2066..U+206F
///   (the bidi isolates LRI, RLI, FSI, PDI, and deprecated format
///   characters);
/// - U+FEFF zero-width no-break space (the BOM);
/// - U+FFF9..U+FFFB interlinear annotation characters;
/// - U+110BD, U+110CD Kaithi number signs; U+13430..U+1343F Egyptian
///   hieroglyph format controls; U+1BCA0..U+1BCA3 shorthand format
///   controls; U+1D173..U+1D17A musical beam and phrase controls;
/// - U+E0001 language tag and U+E0020..U+E007F tag characters (invisible
///   ASCII look-alikes).
const FORMAT_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is of general category Cf ([`FORMAT_RANGES`]).
fn is_format(c: char) -> bool {
    let cp = u32::from(c);
    FORMAT_RANGES
        .binary_search_by(|&(first, last)| {
            if last < cp {
                std::cmp::Ordering::Less
            } else if first > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Whether `c` is written escaped in a log line: general category Cc (C0,
/// DEL and C1 controls; `char::is_control` is exactly Cc), Cf
/// ([`FORMAT_RANGES`]), Zl (U+2028 line separator), Zp (U+2029 paragraph
/// separator), and the quote and backslash of the quoting itself.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '"' || c == '\\' || c == '\u{2028}' || c == '\u{2029}' || is_format(c)
}

/// [`push_clean`]'s text as a new string: safe to put in a log line.
pub fn clean(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(256));
    push_clean(&mut out, value);
    out
}

/// Appends `value`, at most 256 characters of it, with every character
/// that [`needs_escape`] written as `\xNN` below U+0100 and as `\u{NNNN}`
/// above (so never read as `\xNN` followed by more digits).
pub fn push_clean(out: &mut String, value: &str) {
    // Nearly every value (user, host, service, reason) is short printable
    // ASCII with nothing to escape: copy it whole.
    let plain = |b: &u8| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    if value.len() <= 256 && value.as_bytes().iter().all(plain) {
        out.push_str(value);
        return;
    }
    for c in value.chars().take(256) {
        if !needs_escape(c) {
            out.push(c);
        } else if u32::from(c) < 0x100 {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_and_facility() {
        let line = format_line(
            "pam_otp(sshd:auth)",
            Level::Notice,
            "user=\"a\" result=auth_err",
        );
        assert!(line.starts_with("<85>pam_otp(sshd:auth)["), "{line}");
        assert!(line.ends_with("]: user=\"a\" result=auth_err"));
    }

    #[test]
    fn hostile_values_cannot_forge_lines() {
        assert_eq!(clean("bob\nFAKE: root ok"), "bob\\x0aFAKE: root ok");
        assert_eq!(clean("a\"b"), "a\\x22b");
        assert_eq!(clean(&"x".repeat(1000)).len(), 256);
        assert_eq!(clean("a\\b\u{7f}c\u{85}d"), "a\\x5cb\\x7fc\\x85d");
        assert_eq!(clean("sshd 127.0.0.1 é"), "sshd 127.0.0.1 é");
        assert_eq!(clean(""), "");
    }

    /// Every character of general category Cc (C0, DEL, C1), Cf (the bidi
    /// overrides and isolates, zero-width characters, the BOM, tags, ...),
    /// Zl and Zp is escaped: each would let a value reorder, hide or break
    /// the line it is logged in. Below U+0100 as `\xNN`, above as
    /// `\u{NNNN}` (never read as `\xNN` followed by digits).
    #[test]
    fn control_format_and_separator_characters_are_escaped() {
        for (c, escaped) in [
            ('\u{0}', "\\x00"),
            ('\u{1b}', "\\x1b"),
            ('\u{7f}', "\\x7f"),
            ('\u{9f}', "\\x9f"),
            ('\u{ad}', "\\xad"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{202e}', "\\u{202e}"),
            ('\u{1343f}', "\\u{1343f}"),
            ('\u{e007f}', "\\u{e007f}"),
        ] {
            assert_eq!(clean(&format!("a{c}b")), format!("a{escaped}b"), "{c:?}");
        }
        // The first and last of every Cf range of Unicode 17.0.
        for &(first, last) in FORMAT_RANGES {
            for cp in [first, last] {
                let c = char::from_u32(cp).unwrap();
                let out = clean(&c.to_string());
                assert!(
                    !out.contains(c) && out.starts_with('\\'),
                    "U+{cp:04X}: {out:?}"
                );
            }
        }
        let bidi = "alice\u{202e}txt.exe\u{2066}\u{2069}\u{200f}\u{feff}";
        assert_eq!(
            clean(bidi),
            "alice\\u{202e}txt.exe\\u{2066}\\u{2069}\\u{200f}\\u{feff}"
        );
        // Letters, symbols and spaces of other scripts are kept as they are.
        for kept in [
            "é", "ü", "日本", "✓", "😀", "\u{a0}", "\u{3000}", "\u{200a}", "\u{2030}",
        ] {
            assert_eq!(clean(kept), kept, "{kept:?}");
        }
    }

    /// The table is what the lookup assumes: sorted, disjoint ranges.
    #[test]
    fn format_ranges_are_sorted_and_disjoint() {
        for pair in FORMAT_RANGES.windows(2) {
            assert!(
                pair[0].0 <= pair[0].1 && pair[0].1 + 1 < pair[1].0,
                "{pair:x?}"
            );
        }
        let (first, last) = FORMAT_RANGES[FORMAT_RANGES.len() - 1];
        assert!(first <= last);
        // Just outside each range: not format characters.
        for &(first, last) in FORMAT_RANGES {
            for cp in [first - 1, last + 1] {
                let c = char::from_u32(cp).unwrap();
                assert!(!is_format(c), "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn no_log_socket_is_not_an_error() {
        let l = Logger {
            ident: "t".into(),
            socket_path: "/nonexistent/dev/log",
        };
        l.log(Level::Info, "dropped quietly");
    }
}
