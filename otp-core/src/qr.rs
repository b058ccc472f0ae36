//! A QR code in the terminal: UTF-8 half blocks, two modules per character
//! cell (one above the other), with the 4-module quiet zone the standard
//! asks for.
//!
//! A terminal draws a glyph's ink in its foreground colour and everything
//! else in its background colour, and which of the two is dark depends on
//! its theme. Plain text therefore shows the same picture dark on light on
//! one terminal and light on dark (inverted) on another, and many readers
//! (zbar among them) do not read an inverted QR code.
//!
//! `Utf8` (plain text, no escape sequences) prints the code twice, one
//! above the other: first with the dark modules as ink (it reads where ink
//! is dark, on a light terminal or paper), then with the light modules and
//! the quiet zone as ink (it reads where ink is light, on a dark terminal).
//! Whatever the theme, one of the two is a right code with a light quiet
//! zone, and it is the one that looks like a QR code on paper.
//!
//! `Ansi` prints the code once, each line wrapped in explicit black-on-white
//! colours, so it reads the same whatever the terminal's theme; it is the
//! default on a terminal.

use qrcode::{Color, QrCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrStyle {
    Utf8,
    Ansi,
    None,
}

/// Black ink (palette 16) on a bright white background (palette 231): the
/// 256-colour cube's pure black and white, the same on every theme.
const BLACK_ON_WHITE: &str = "\x1b[38;5;16m\x1b[48;5;231m";
const RESET: &str = "\x1b[0m";

/// Light modules around the code, on each side.
const QUIET_ZONE: usize = 4;

/// The picture, each line ending in a newline; `None` if `data` does not
/// fit in a QR code.
pub fn render(data: &str, style: QrStyle) -> Option<String> {
    if style == QrStyle::None {
        return Some(String::new());
    }
    let dark = modules(&QrCode::new(data.as_bytes()).ok()?);
    let mut out = String::new();
    match style {
        QrStyle::Ansi => {
            for line in half_block_lines(&dark) {
                // Per line, so a terminal that resets colours at a line end
                // (or a pager that cuts lines) still shows each one right.
                out.push_str(BLACK_ON_WHITE);
                out.push_str(&line);
                out.push_str(RESET);
                out.push('\n');
            }
        }
        QrStyle::Utf8 => {
            let light: Vec<Vec<bool>> = dark
                .iter()
                .map(|row| row.iter().map(|d| !d).collect())
                .collect();
            let both: Vec<Vec<bool>> = dark.iter().chain(&light).cloned().collect();
            for line in half_block_lines(&both) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        QrStyle::None => {}
    }
    Some(out)
}

/// The code's modules, quiet zone included: `true` for a dark one.
fn modules(code: &QrCode) -> Vec<Vec<bool>> {
    let width = code.width();
    let blank = vec![false; width + 2 * QUIET_ZONE];
    let mut rows = vec![blank.clone(); QUIET_ZONE];
    for code_row in code.to_colors().chunks(width) {
        let mut row = vec![false; QUIET_ZONE];
        row.extend(code_row.iter().map(|c| *c == Color::Dark));
        row.extend([false; QUIET_ZONE]);
        rows.push(row);
    }
    rows.extend(std::iter::repeat_n(blank, QUIET_ZONE));
    rows
}

/// Two rows of modules per line of text, `true` drawn as ink: full block,
/// upper half, lower half or space. An odd last row gets a blank one below.
fn half_block_lines(ink: &[Vec<bool>]) -> Vec<String> {
    ink.chunks(2)
        .map(|pair| {
            let (top, bottom) = match pair {
                [top, bottom] => (top, bottom.clone()),
                [top] => (top, vec![false; top.len()]),
                _ => return String::new(),
            };
            top.iter()
                .zip(bottom)
                .map(|(top, bottom)| match (*top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/x?secret=GEZDGNBV";

    /// The modules a text picture inks, two rows per line.
    fn inked(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let cells: Vec<(bool, bool)> = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            rows.push(cells.iter().map(|c| c.0).collect());
            rows.push(cells.iter().map(|c| c.1).collect());
        }
        rows
    }

    fn quiet_zone_is(square: &[Vec<bool>], ink: bool) -> bool {
        let w = square.len();
        square.iter().enumerate().all(|(y, r)| {
            r.iter().enumerate().all(|(x, m)| {
                let border = y < 4 || y + 4 >= w || x < 4 || x + 4 >= w;
                !border || *m == ink
            })
        })
    }

    #[test]
    fn utf8_is_the_code_then_its_inverse_each_with_a_quiet_zone() {
        let text = render(URI, QrStyle::Utf8).unwrap();
        let rows = inked(&text);
        let side = rows[0].len();
        // Two squares of side modules, one above the other (an odd side
        // makes them share a line, with no padding row at the end).
        assert_eq!(rows.len(), 2 * side);
        let (first, second) = rows.split_at(side);
        assert!(quiet_zone_is(first, false), "blank quiet zone first");
        assert!(quiet_zone_is(second, true), "inked quiet zone second");
        for (a, b) in first.iter().zip(second) {
            assert!(a.iter().zip(b).all(|(x, y)| x != y), "exact inverse");
        }
        let code = QrCode::new(URI.as_bytes()).unwrap();
        assert_eq!(side, code.width() + 8);
        assert_eq!(first, modules(&code));
    }

    #[test]
    fn ansi_is_one_code_in_explicit_colours() {
        let ansi = render(URI, QrStyle::Ansi).unwrap();
        assert!(ansi
            .lines()
            .all(|l| l.starts_with(BLACK_ON_WHITE) && l.ends_with(RESET)));
        let plain: String = ansi
            .lines()
            .map(|l| format!("{}\n", &l[BLACK_ON_WHITE.len()..l.len() - RESET.len()]))
            .collect();
        let rows = inked(&plain);
        let side = rows[0].len();
        // One square; its odd last row is padded with a blank one.
        assert_eq!(rows.len(), side + 1);
        assert!(quiet_zone_is(&rows[..side], false));
        assert!(rows[side].iter().all(|m| !m));
    }

    #[test]
    fn none_and_too_long() {
        assert_eq!(render("x", QrStyle::None).unwrap(), "");
        assert!(render(&"x".repeat(8000), QrStyle::Utf8).is_none());
        assert!(render(&"x".repeat(8000), QrStyle::Ansi).is_none());
    }
}
