//! Questions on the terminal, or lines from standard input when it is not
//! one (scripts, tests). Questions go to standard error, so standard output
//! carries only the results.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};

pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// Asks and returns the answer without its line end; `None` at end of input.
pub fn ask(question: &str) -> Option<String> {
    if !question.is_empty() {
        let mut err = io::stderr().lock();
        let _ = write!(err, "{question}");
        let _ = err.flush();
    }
    let mut line = String::new();
    // At most a few KiB: a code or a key, never a whole file piped in.
    let read = io::stdin().lock().take(4096).read_line(&mut line);
    match read {
        Ok(0) | Err(_) => {
            if !question.is_empty() {
                let _ = writeln!(io::stderr());
            }
            None
        }
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
    }
}

/// Like [`ask`], but on a terminal the answer is not echoed (a key typed in
/// should not stay on the screen). From a pipe it is one line, read without
/// a question.
pub fn ask_hidden(question: &str) -> Option<String> {
    let Some(_echo_off) = EchoOff::new() else {
        return ask("");
    };
    let answer = ask(question);
    // The Enter key was not echoed either.
    let _ = writeln!(io::stderr());
    answer
}

/// A yes/no question; only "y"/"yes" is yes.
pub fn confirm(question: &str) -> bool {
    matches!(
        ask(question)
            .map(|a| a.trim().to_ascii_lowercase())
            .as_deref(),
        Some("y" | "yes")
    )
}

/// Terminal echo switched off on standard input until dropped.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    fn new() -> Option<EchoOff> {
        if !stdin_is_terminal() {
            return None;
        }
        let saved = tcgetattr(io::stdin()).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(io::stdin(), SetArg::TCSANOW, &quiet).ok()?;
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// A `--secret` value: itself, or with `-` one line read from standard
/// input (hidden on a terminal), so a key need not be a process argument.
pub fn secret_arg(value: &str, question: &str) -> Option<String> {
    if value == "-" {
        ask_hidden(question)
    } else {
        Some(value.to_string())
    }
}
