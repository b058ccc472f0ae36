//! A QR code in the terminal: qrcode's `Dense1x2` renderer, two modules per
//! character cell (UTF-8 half blocks), with the 4-module quiet zone the
//! standard asks for.
//!
//! `Utf8` prints dark modules as the glyph's ink, as on paper: right on a
//! light terminal, inverted on a dark one (which some readers cope with and
//! some do not). `Ansi` wraps every line in explicit black-on-white colours,
//! so it reads the same whatever the terminal's theme; it is the default on
//! a terminal.

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

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

/// The picture, each line ending in a newline; `None` if `data` does not
/// fit in a QR code.
pub fn render(data: &str, style: QrStyle) -> Option<String> {
    if style == QrStyle::None {
        return Some(String::new());
    }
    let code = QrCode::new(data.as_bytes()).ok()?;
    let picture = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build();
    let mut out = String::with_capacity(picture.len() * 2);
    for line in picture.lines() {
        if style == QrStyle::Ansi {
            // Per line, so a terminal that resets colours at a line end
            // (or a pager that cuts lines) still shows each one right.
            out.push_str(BLACK_ON_WHITE);
            out.push_str(line);
            out.push_str(RESET);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_with_a_quiet_zone() {
        let text = render("otpauth://totp/x?secret=GEZDGNBV", QrStyle::Utf8).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        // Modules: width across, about twice the lines down.
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert_eq!(width.div_ceil(2), lines.len());
        // Quiet zone: 4 blank modules = 2 blank lines top, 4 spaces each side.
        for l in &lines[..2] {
            assert!(l.chars().all(|c| c == ' '), "{l:?}");
        }
        for l in &lines {
            assert!(l.starts_with("    ") && l.ends_with("    "), "{l:?}");
        }
        let ansi = render("otpauth://totp/x?secret=GEZDGNBV", QrStyle::Ansi).unwrap();
        assert!(ansi
            .lines()
            .all(|l| l.starts_with(BLACK_ON_WHITE) && l.ends_with(RESET)));
        assert_eq!(render("x", QrStyle::None).unwrap(), "");
        assert!(render(&"x".repeat(8000), QrStyle::Utf8).is_none());
    }
}
