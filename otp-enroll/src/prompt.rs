//! Questions on the terminal, or lines from standard input when it is not
//! one (scripts, tests).

use std::io::{self, BufRead, IsTerminal, Write};

pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// Asks and returns the answer without its line end; `None` at end of input.
pub fn ask(question: &str) -> Option<String> {
    let mut err = io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut line = String::new();
    match io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => {
            let _ = writeln!(err);
            None
        }
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
    }
}

/// A yes/no question; only "y"/"yes" is yes.
pub fn confirm(question: &str) -> bool {
    matches!(
        ask(question).as_deref().map(str::trim),
        Some("y" | "Y" | "yes" | "YES" | "Yes")
    )
}
