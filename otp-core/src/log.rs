//! Logging to syslog (facility authpriv) without ever blocking or failing.
//!
//! A datagram is sent to `/dev/log` with `MSG_DONTWAIT`: no syslog
//! daemon, a full queue or any other error means the line is dropped, never
//! that the login waits or fails. The daemon stamps the time. Values from
//! the outside (user names, host names) are quoted with control characters
//! escaped, so a crafted name cannot forge a log line.

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

/// Control characters escaped, length bounded: safe to put in a log line.
pub fn clean(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(256));
    push_clean(&mut out, value);
    out
}

/// Appends `value` as [`clean`] writes it.
pub fn push_clean(out: &mut String, value: &str) {
    // Nearly every value (user, host, service, reason) is short printable
    // ASCII with nothing to escape: copy it whole.
    let plain = |b: &u8| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    if value.len() <= 256 && value.as_bytes().iter().all(plain) {
        out.push_str(value);
        return;
    }
    for c in value.chars().take(256) {
        if c.is_control() || c == '"' || c == '\\' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
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

    #[test]
    fn no_log_socket_is_not_an_error() {
        let l = Logger {
            ident: "t".into(),
            socket_path: "/nonexistent/dev/log",
        };
        l.log(Level::Info, "dropped quietly");
    }
}
