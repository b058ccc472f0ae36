//! A QR code in the terminal, two modules per character cell (UTF-8 half
//! blocks), with the 4-module quiet zone the standard asks for.
//!
//! `Utf8` prints dark modules as the glyph's ink, as on paper: right on a
//! light terminal. `Ansi` also sets explicit black-on-white colours, so it
//! reads the same on dark and light terminals; it is the default on a tty.

use qrcode::{Color, QrCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrStyle {
    Utf8,
    Ansi,
    None,
}

const QUIET: usize = 4;

pub fn render(data: &str, style: QrStyle) -> Option<String> {
    if style == QrStyle::None {
        return Some(String::new());
    }
    let code = QrCode::new(data.as_bytes()).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET;
    let dark = |x: usize, y: usize| -> bool {
        if x < QUIET || y < QUIET || x >= QUIET + width || y >= QUIET + width {
            return false;
        }
        colors[(y - QUIET) * width + (x - QUIET)] == Color::Dark
    };
    let mut out = String::new();
    for row in (0..size).step_by(2) {
        if style == QrStyle::Ansi {
            // Bright white background, black ink.
            out.push_str("\x1b[48;5;231m\x1b[38;5;16m");
        }
        for x in 0..size {
            let top = dark(x, row);
            let bottom = row + 1 < size && dark(x, row + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if style == QrStyle::Ansi {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    Some(out)
}
