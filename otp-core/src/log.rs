//! Logging to syslog (facility authpriv) without ever blocking or failing.
//!
//! A datagram is sent to `/dev/log` with `MSG_DONTWAIT`: no syslog
//! daemon, a full queue or any other error means the line is dropped, never
//! that the login waits or fails. The daemon stamps the time. Values from
//! the outside (user names, host names) are quoted with control, format
//! and separator characters escaped (see [`clean`]), so a crafted name
//! cannot forge, break, reorder or hide part of a log line.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{sendto, MsgFlags, UnixAddr};

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
        Logger {
            ident: format!("pam_otp({}:auth)", clean(service)),
            socket_path: "/dev/log",
        }
    }

    /// For a program's own lines (`otp-enroll`): `ident` as it is.
    pub fn program(ident: &str) -> Logger {
        Logger {
            ident: clean(ident),
            socket_path: "/dev/log",
        }
    }

    pub fn log(&self, level: Level, message: &str) {
        let line = format_line(&self.ident, level, message);
        // MSG_DONTWAIT: a full queue drops the line instead of waiting.
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
    let priority = LOG_AUTHPRIV | level as u8;
    format!("<{priority}>{ident}[{}]: {message}", std::process::id())
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
/// separator), the backslash of the escapes themselves, and, for text that
/// stands inside quotes (`quote`), the quote.
fn needs_escape(c: char, quote: bool) -> bool {
    // Log values are almost all ASCII, where Cf, Zl and Zp have no member.
    if c.is_ascii() {
        return c.is_ascii_control() || (quote && c == '"') || c == '\\';
    }
    c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_format(c)
}

/// How much of a field (a user name, an address, a service) a line keeps:
/// what the program hands the module is bounded before it is logged.
pub const MAX_FIELD: usize = 256;

/// How much of a line's reason or warning it keeps: the module's own
/// words, which end with what decided (the rule) and may quote a config
/// error whole, so cut only far beyond any real one. Well inside what
/// rsyslog (8 KiB) and journald take in one datagram.
pub const MAX_REASON: usize = 2048;

/// `value`, at most [`MAX_FIELD`] characters of it, safe to put in a log
/// line: every character that [`needs_escape`] is written as `\xNN` below
/// U+0100 and as `\u{NNNN}` above (so never read as `\xNN` followed by
/// more digits).
pub fn clean(value: &str) -> String {
    clean_at_most(value, MAX_FIELD)
}

/// [`clean`] for a reason or a warning: at most [`MAX_REASON`] characters.
pub fn clean_reason(value: &str) -> String {
    clean_at_most(value, MAX_REASON)
}

fn clean_at_most(value: &str, most: usize) -> String {
    escape_chars(value.chars().take(most), value.len().min(most), true)
}

/// `value` whole, escaped as [`clean`] escapes it (the same characters,
/// written the same way) but not shortened, and with `"` left as it is:
/// for text from input that otp-enroll shows on a terminal (serials, user
/// names, file names, messages quoting them), where a bidi override, an
/// escape sequence or a newline must not act either. A quote acts on no
/// terminal, and such messages quote values themselves (`"a" is there
/// more than once`); [`escape_quoted`] is for a value put between quotes.
pub fn escape(value: &str) -> String {
    escape_chars(value.chars(), value.len(), false)
}

/// [`escape`] with the quote escaped too, for a value shown between
/// quotes: the value then always ends where the quotes say.
pub fn escape_quoted(value: &str) -> String {
    escape_chars(value.chars(), value.len(), true)
}

/// The one escaping of [`clean`], [`escape`] and [`escape_quoted`].
fn escape_chars(chars: impl Iterator<Item = char>, capacity: usize, quote: bool) -> String {
    let mut out = String::with_capacity(capacity);
    for c in chars {
        let cp = u32::from(c);
        if !needs_escape(c, quote) {
            out.push(c);
        } else if cp < 0x100 {
            let _ = write!(out, "\\x{cp:02x}");
        } else {
            let _ = write!(out, "\\u{{{cp:x}}}");
        }
    }
    out
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
        assert_eq!(clean_reason(&"x".repeat(1000)).len(), 1000);
        assert_eq!(clean_reason(&"x".repeat(5000)).len(), MAX_REASON);
        assert_eq!(clean("a\\b\u{7f}c\u{85}d"), "a\\x5cb\\x7fc\\x85d");
        assert_eq!(clean("sshd 127.0.0.1 é"), "sshd 127.0.0.1 é");
        assert_eq!(clean(""), "");
    }

    /// `escape` is `clean` without the length limit.
    #[test]
    fn escape_is_clean_unshortened() {
        let long = format!("{}\u{202e}\n\u{1b}[2J", "é".repeat(300));
        assert_eq!(clean(&long), "é".repeat(256));
        assert_eq!(
            escape(&long),
            format!("{}\\u{{202e}}\\x0a\\x1b[2J", "é".repeat(300))
        );
        assert_eq!(escape("A\u{202e}B\"\\"), "A\\u{202e}B\"\\x5c");
        assert_eq!(escape_quoted("A\u{202e}B\"\\"), "A\\u{202e}B\\x22\\x5c");
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

    fn logger_at(path: &std::path::Path) -> Logger {
        let path: &'static str = Box::leak(path.to_string_lossy().into_owned().into_boxed_str());
        Logger {
            ident: "pam_otp(t:auth)".into(),
            socket_path: path,
        }
    }

    #[test]
    fn a_line_reaches_the_socket_as_syslog_reads_it() {
        let path = std::env::temp_dir().join(format!("pam_otp-log-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        logger_at(&path).log(Level::Err, "user=\"a\" result=authinfo_unavail");
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_eq!(
            line,
            format!(
                "<83>pam_otp(t:auth)[{}]: user=\"a\" result=authinfo_unavail",
                std::process::id()
            )
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// No daemon, or one that does not read: the line is dropped, and the
    /// login neither waits nor fails (thousands of lines into a socket
    /// nobody reads would block at once without MSG_DONTWAIT).
    #[test]
    fn a_missing_or_full_socket_never_blocks() {
        logger_at(std::path::Path::new("/nonexistent/dev/log")).log(Level::Info, "dropped");
        let path = std::env::temp_dir().join(format!("pam_otp-full-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let _sock = UnixDatagram::bind(&path).unwrap();
        let logger = logger_at(&path);
        for i in 0..5_000 {
            logger.log(Level::Info, &format!("line {i} {}", "x".repeat(200)));
        }
        std::fs::remove_file(&path).unwrap();
    }
}
