//! Writing to standard output without `println!`, which panics when the
//! reader has gone away (`otp-enroll status | head -1`). A failed write is
//! an [`Error::Output`]: `new` then stops before saving a secret nobody saw.

use std::fmt;
use std::io::{self, Write};

use crate::error::Error;

/// `say!("...")`: one line on standard output, `?`-propagating a failure.
macro_rules! say {
    () => {
        $crate::output::write(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use say;

pub fn write(args: fmt::Arguments) -> Result<(), Error> {
    io::stdout().lock().write_fmt(args).map_err(Error::Output)
}

pub fn flush() -> Result<(), Error> {
    io::stdout().lock().flush().map_err(Error::Output)
}

/// A message on standard error; a failure to write it is ignored (there is
/// nowhere left to report it).
pub fn warn(args: fmt::Arguments) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args);
    let _ = err.write_all(b"\n");
}

/// Text that came from input (a serial, token id, user name, file name,
/// issuer, label, or a message quoting one), as it may be printed:
/// escaped as the log escapes it, by the log's own function, so a bidi
/// override, an escape sequence or a newline in it cannot act on the
/// terminal.
pub fn shown(text: &str) -> String {
    otp_core::log::escape(text)
}

/// [`shown`] in double quotes (the quote itself is escaped, so the value
/// always ends where the quotes say).
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", otp_core::log::escape_quoted(text))
}
