//! Reading the QR codes a terminal shows, the way a phone held up to the
//! screen would: from the text a program printed (as captured on a
//! pseudo-terminal), find each picture drawn with half blocks, draw it as
//! a grey-scale image and let zbar (`zbarimg`, zbar-tools) read it.
//!
//! A terminal cell is one unit wide and two high. A picture is a run of
//! consecutive lines made only of `█` (both halves inked), `▀` (upper
//! half), `▄` (lower half), `#` (both halves: the ASCII full cell) and
//! spaces; the ink is drawn dark on a light background, as on a light
//! terminal or paper. So a half-block code (one module per half cell, as
//! `otp-enroll`'s renderer draws it) and an ASCII one drawn with `##` per
//! module on one line per module row both come out with square modules.
//! A light-on-dark copy (the second half of otp-enroll's `Utf8` style, for
//! dark terminals) is an inverted code in that image, and zbar reads no
//! inverted code: only the dark-on-light copy is decoded.
//!
//! Tolerated, because ssh and the pseudo-terminal put them there: carriage
//! returns at line ends (the terminal's CR LF) and starts (ssh writes one
//! before its prompt), a `(user@host) ` prefix at
//! the start of a picture's first line (ssh puts it before each
//! keyboard-interactive prompt, so it lands on the first line of the text
//! the PAM module sent before that prompt), lines of unequal length (a
//! missing tail is light), and any other text around the pictures.

use std::fs;
use std::process::Command;

/// Pixels per unit: a half cell (one module of a half-block code) is
/// `SCALE` x `SCALE` pixels.
const SCALE: usize = 4;
/// Light units added around each picture, on every side.
const MARGIN: usize = 8;
/// Fewer lines with ink than this cannot be a QR code (the smallest, 21
/// modules, takes 11 lines of half blocks).
const MIN_INKED_LINES: usize = 10;

/// What zbar read in each picture of `terminal_text`, top to bottom (one
/// entry per code read; a picture with no readable code adds none).
/// Panics if `zbarimg` cannot be run.
pub fn decode_all(terminal_text: &str) -> Vec<String> {
    pictures(terminal_text)
        .iter()
        .flat_map(|rows| zbar(&to_pgm(rows)))
        .collect()
}

/// Both halves of one cell: whether each is inked (upper, lower); `None`
/// for a character that is not part of a picture.
fn cell(c: char) -> Option<(bool, bool)> {
    match c {
        '█' | '#' => Some((true, true)),
        '▀' => Some((true, false)),
        '▄' => Some((false, true)),
        ' ' => Some((false, false)),
        _ => None,
    }
}

/// `line` without the `(user@host) ` that ssh puts before a prompt.
fn without_prompt_prefix(line: &str) -> &str {
    let Some(rest) = line.strip_prefix('(') else {
        return line;
    };
    match rest.split_once(") ") {
        Some((who, after)) if who.contains('@') && !who.contains([' ', '(', ')']) => after,
        _ => line,
    }
}

/// The picture line `line` shows, as cells, or `None` if it has other text.
fn picture_line(line: &str) -> Option<Vec<(bool, bool)>> {
    let line = without_prompt_prefix(line.trim_matches('\r'));
    line.chars().map(cell).collect()
}

/// Each picture in `text`: its rows of units (true = ink), two per line.
/// Runs of picture lines with too little ink are left out.
fn pictures(text: &str) -> Vec<Vec<Vec<bool>>> {
    let mut found = Vec::new();
    let mut run: Vec<Vec<(bool, bool)>> = Vec::new();
    let mut flush = |run: &mut Vec<Vec<(bool, bool)>>| {
        let inked = run
            .iter()
            .filter(|l| l.iter().any(|(t, b)| *t || *b))
            .count();
        if inked >= MIN_INKED_LINES {
            let width = run.iter().map(Vec::len).max().unwrap_or(0);
            let mut rows = Vec::new();
            for line in run.iter() {
                let mut top: Vec<bool> = line.iter().map(|c| c.0).collect();
                let mut bottom: Vec<bool> = line.iter().map(|c| c.1).collect();
                top.resize(width, false);
                bottom.resize(width, false);
                rows.push(top);
                rows.push(bottom);
            }
            found.push(rows);
        }
        run.clear();
    };
    for line in text.split('\n') {
        match picture_line(line) {
            Some(cells) => run.push(cells),
            None => flush(&mut run),
        }
    }
    flush(&mut run);
    found
}

/// `rows` of units as a binary PGM image: ink black (0) on white (255),
/// [`MARGIN`] light units around, [`SCALE`] pixels per unit; a cell is
/// `SCALE` pixels wide and `2 * SCALE` high, as on a terminal.
fn to_pgm(rows: &[Vec<bool>]) -> Vec<u8> {
    let units_wide = rows.first().map_or(0, Vec::len) + 2 * MARGIN;
    let units_high = rows.len() + 2 * MARGIN;
    let blank = vec![false; units_wide];
    let mut pgm = format!("P5\n{} {}\n255\n", units_wide * SCALE, units_high * SCALE).into_bytes();
    let padded = std::iter::repeat_n(&blank, MARGIN)
        .cloned()
        .chain(rows.iter().map(|r| {
            let mut row = vec![false; MARGIN];
            row.extend(r);
            row.resize(units_wide, false);
            row
        }))
        .chain(std::iter::repeat_n(blank.clone(), MARGIN));
    for row in padded {
        let line: Vec<u8> = row
            .iter()
            .flat_map(|ink| std::iter::repeat_n(if *ink { 0 } else { 255 }, SCALE))
            .collect();
        for _ in 0..SCALE {
            pgm.extend_from_slice(&line);
        }
    }
    pgm
}

/// What `zbarimg --raw -q` reads in the image `pgm`: one entry per code.
fn zbar(pgm: &[u8]) -> Vec<String> {
    let path = std::env::temp_dir().join(format!("qr-scan-{}.pgm", crate::unique_id()));
    fs::write(&path, pgm).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&path)
        .output();
    let _ = fs::remove_file(&path);
    let out = out.expect("zbarimg installed (zbar-tools)");
    // zbarimg exits 4 when it finds no code: that is an empty answer.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::qr::{render, QrStyle};

    const URI: &str = "otpauth://totp/pam_otp:alice%40host?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=pam_otp";

    /// A code drawn in ASCII: `##` for a dark module, two spaces for a
    /// light one, one line per row, with a 4-module quiet zone.
    fn ascii(data: &str) -> String {
        let code = qrcode::QrCode::new(data.as_bytes()).unwrap();
        let w = code.width();
        let colors = code.to_colors();
        let mut out = String::new();
        for y in 0..w + 8 {
            for x in 0..w + 8 {
                let inside = (4..w + 4).contains(&x) && (4..w + 4).contains(&y);
                let dark = inside && colors[(y - 4) * w + (x - 4)] == qrcode::Color::Dark;
                out.push_str(if dark { "##" } else { "  " });
            }
            out.push('\n');
        }
        out
    }

    #[test]
    #[ignore = "needs zbarimg (zbar-tools, a test package): make test"]
    fn reads_the_half_block_code_once() {
        let text = render(URI, QrStyle::Utf8).unwrap();
        // The dark-on-light copy; the inverted copy below it is not read.
        assert_eq!(decode_all(&text), [URI]);
    }

    #[test]
    #[ignore = "needs zbarimg (zbar-tools, a test package): make test"]
    fn reads_it_as_a_pty_shows_it_after_an_ssh_prompt_prefix() {
        let qr = render(URI, QrStyle::Utf8).unwrap();
        // ssh's prefix on the first line, CR LF line ends, text around.
        let text = format!(
            "Warning: Permanently added '[127.0.0.1]:2222' (ED25519).\r\n(alice@127.0.0.1) {}\
             URI: {URI}\r\n(alice@127.0.0.1) Enter the code your app shows now: ",
            qr.replace('\n', "\r\n")
        );
        assert_eq!(decode_all(&text), [URI]);
        // Even on a first line with ink (no quiet zone above the code).
        let lines: Vec<&str> = qr.lines().collect();
        let first_inked = format!("(alice@127.0.0.1) {}", lines[2..].join("\n"));
        assert_eq!(decode_all(&first_inked), [URI]);
    }

    #[test]
    #[ignore = "needs zbarimg (zbar-tools, a test package): make test"]
    fn reads_each_picture_and_trailing_spaces_may_be_gone() {
        let other = "otpauth://hotp/x?secret=GEZDGNBV&counter=1";
        let trimmed: String = render(other, QrStyle::Utf8)
            .unwrap()
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        let text = format!(
            "first:\n{}second:\n{trimmed}done\n",
            render(URI, QrStyle::Utf8).unwrap()
        );
        assert_eq!(decode_all(&text), [URI, other]);
    }

    #[test]
    #[ignore = "needs zbarimg (zbar-tools, a test package): make test"]
    fn reads_the_ascii_code() {
        assert_eq!(decode_all(&ascii(URI)), [URI]);
    }

    #[test]
    #[ignore = "needs zbarimg (zbar-tools, a test package): make test"]
    fn reads_nothing_where_there_is_no_picture() {
        let qr = render(URI, QrStyle::Utf8).unwrap();
        // What ssh prints for the half blocks in the C locale: octal escapes.
        let escaped: String = qr
            .chars()
            .map(|c| match c {
                '\n' | ' ' => c.to_string(),
                c => {
                    let mut b = [0; 4];
                    c.encode_utf8(&mut b)
                        .bytes()
                        .map(|b| format!("\\{b:03o}"))
                        .collect()
                }
            })
            .collect();
        assert!(decode_all(&escaped).is_empty());
        assert!(decode_all("").is_empty());
        assert!(decode_all("login: \n\n   \nPassword: ").is_empty());
        // The light-on-dark copy alone is an inverted code: zbar reads none.
        let lines: Vec<&str> = qr.lines().collect();
        let inverted = lines[lines.len() / 2 + 1..].join("\n");
        assert!(decode_all(&inverted).is_empty());
    }
}
