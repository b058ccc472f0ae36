//! Helpers shared by otp-enroll's integration tests (testkit has the users,
//! PAM and oathtool; this has what is specific to the command's output).

#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testkit::{binary_path, TestUser};

/// The RFC 4226 test key, as a token vendor would ship it.
pub const RFC4226_HEX: &str = "3132333435363738393031323334353637383930";

/// otp-enroll run as root (this test process).
pub fn enroll() -> Command {
    Command::new(binary_path("otp-enroll"))
}

/// otp-enroll run as `user` (setpriv: real and effective uid of the user).
pub fn enroll_as(user: &TestUser) -> Command {
    user.command(binary_path("otp-enroll").to_str().unwrap())
}

/// otp-enroll as root acting for `user` with `args`.
pub fn admin(user: &TestUser, args: &[&str]) -> Output {
    let mut cmd = enroll();
    cmd.arg("--user").arg(&user.name).args(args);
    run(cmd, "")
}

/// Runs `cmd` with `stdin` as its input; a program that exits without
/// reading it all is not an error of the test.
pub fn run(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    match input.write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("stdin: {e}"),
        _ => {}
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// stdout and stderr together, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Asserts success, showing everything printed when it failed.
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed ({:?}):\n{}", o.status, text(o));
    stdout(o)
}

/// Asserts failure with exit status `code`; returns what it printed.
pub fn fails(o: &Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let all = text(o);
    assert!(!all.contains("panicked"), "{all}");
    all
}

/// The value after `label` on the first line that has it ("  URI:  ...").
pub fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
        .trim()
}

/// The base32 key `new` printed (groups of four joined).
pub fn printed_key(out: &str) -> String {
    field(out, "Key:")
        .trim_end_matches("(base32)")
        .trim()
        .replace(' ', "")
}

/// The emergency codes printed (lines of exactly 8 digits).
pub fn printed_codes(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

/// The lines of the QR code `new` printed, escape sequences included.
pub fn qr_lines(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Scan this QR code"))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with("Or add it by hand"))
        .collect();
    assert!(lines.len() > 10, "no QR code in:\n{out}");
    lines
}

/// A terminal's idea of a colour: dark or light.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shade {
    Dark,
    Light,
}

/// What a terminal with the given default colours shows for the QR code:
/// one cell is one module wide and two high; the upper half block (or the
/// full block) inks the top module, the lower half block the bottom one,
/// in the foreground colour; the rest is the background. SGR sequences
/// `38;5;N`/`48;5;N` (256-colour palette; 0-7 and 16-231 by brightness),
/// `30-37`, `40-47`, `90-97`, `100-107`, `39`, `49` and `0` are understood,
/// enough to check what otp-enroll prints. Returns rows of modules.
pub fn terminal_pixels(lines: &[&str], fg: Shade, bg: Shade) -> Vec<Vec<Shade>> {
    fn palette(n: u32) -> Shade {
        let light = match n {
            0..=6 | 8 => false,
            7 | 9..=15 => true,
            16..=231 => {
                let n = n - 16;
                let (r, g, b) = (n / 36, n / 6 % 6, n % 6);
                r + g + b >= 8
            }
            _ => n >= 244,
        };
        if light {
            Shade::Light
        } else {
            Shade::Dark
        }
    }
    let mut rows = Vec::new();
    let (mut cur_fg, mut cur_bg) = (fg, bg);
    for line in lines {
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                assert_eq!(chars.next(), Some('['), "only CSI sequences expected");
                let mut params = String::new();
                for p in chars.by_ref() {
                    if p == 'm' {
                        break;
                    }
                    params.push(p);
                }
                let nums: Vec<u32> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
                let mut i = 0;
                while i < nums.len() {
                    match nums[i] {
                        0 => (cur_fg, cur_bg) = (fg, bg),
                        39 => cur_fg = fg,
                        49 => cur_bg = bg,
                        30..=37 => cur_fg = palette(nums[i] - 30),
                        40..=47 => cur_bg = palette(nums[i] - 40),
                        90..=97 => cur_fg = palette(nums[i] - 90 + 8),
                        100..=107 => cur_bg = palette(nums[i] - 100 + 8),
                        38 | 48 if nums.get(i + 1) == Some(&5) => {
                            let shade = palette(nums[i + 2]);
                            if nums[i] == 38 {
                                cur_fg = shade;
                            } else {
                                cur_bg = shade;
                            }
                            i += 2;
                        }
                        other => panic!("unexpected SGR {other} in {params:?}"),
                    }
                    i += 1;
                }
                continue;
            }
            let (t, b) = match c {
                '█' => (cur_fg, cur_fg),
                '▀' => (cur_fg, cur_bg),
                '▄' => (cur_bg, cur_fg),
                ' ' => (cur_bg, cur_bg),
                other => panic!("unexpected character {other:?} in the QR code"),
            };
            top.push(t);
            bottom.push(b);
        }
        rows.push(top);
        rows.push(bottom);
    }
    let width = rows[0].len();
    assert!(
        rows.iter().all(|r| r.len() == width),
        "ragged QR code lines"
    );
    rows
}

/// Writes `rows` as a PGM image, `scale` pixels per module.
pub fn write_pgm(rows: &[Vec<Shade>], scale: usize, path: &Path) {
    let width = rows[0].len() * scale;
    let mut pgm = format!("P2\n{} {}\n255\n", width, rows.len() * scale);
    for r in rows {
        let line: Vec<&str> = r
            .iter()
            .flat_map(|s| std::iter::repeat_n(if *s == Shade::Dark { "0" } else { "255" }, scale))
            .collect();
        let line = line.join(" ");
        for _ in 0..scale {
            pgm.push_str(&line);
            pgm.push('\n');
        }
    }
    fs::write(path, pgm).unwrap();
}

/// What zbarimg reads in the image (None when it finds no code).
pub fn zbar(path: &Path) -> Option<String> {
    let z = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(path)
        .output()
        .expect("zbarimg installed (zbar-tools)");
    z.status
        .success()
        .then(|| String::from_utf8(z.stdout).unwrap().trim_end().to_string())
}

/// Reads the QR code in `out` as a terminal with colours `fg` on `bg`
/// shows it; also checks the quiet zone (4 light modules all round).
pub fn read_qr(out: &str, fg: Shade, bg: Shade, dir: &Path, tag: &str) -> Option<String> {
    let rows = terminal_pixels(&qr_lines(out), fg, bg);
    let path = dir.join(format!("qr-{tag}.pgm"));
    write_pgm(&rows, 4, &path);
    let decoded = zbar(&path);
    let _ = fs::remove_file(&path);
    decoded
}

/// The square pictures in `rows`, top to bottom: a QR code with its quiet
/// zone is as high as it is wide, and the picture may stack more than one.
/// A last text line may add one padding row below the last square.
pub fn squares(rows: &[Vec<Shade>]) -> Vec<&[Vec<Shade>]> {
    let w = rows[0].len();
    assert!(
        rows.len() % w <= 1,
        "not a stack of squares: {} rows of {w}",
        rows.len()
    );
    rows.chunks(w).filter(|c| c.len() == w).collect()
}

/// Whether the modules around the code (4 on each side) are all `shade`,
/// for a square picture (see `squares`).
pub fn quiet_zone_is(square: &[Vec<Shade>], shade: Shade) -> bool {
    let w = square[0].len();
    assert_eq!(square.len(), w, "not square");
    square.iter().enumerate().all(|(y, r)| {
        r.iter().enumerate().all(|(x, s)| {
            let border = y < 4 || y + 4 >= w || x < 4 || x + 4 >= w;
            !border || *s == shade
        })
    })
}

/// Whether some square of the picture has a light quiet zone all round.
pub fn has_light_quiet_zone(rows: &[Vec<Shade>]) -> bool {
    squares(rows)
        .iter()
        .any(|sq| quiet_zone_is(sq, Shade::Light))
}

/// Parses the user's secret file as the module would.
pub fn secret_file(user: &TestUser) -> otp_core::secret_file::SecretFile {
    otp_core::secret_file::SecretFile::parse(&fs::read_to_string(user.secret_path()).unwrap())
        .unwrap()
}

/// `oathtool --totp=ALGORITHM` now, for a base32 key, with `extra` options
/// (testkit's helper always asks for SHA1).
pub fn oathtool_totp_with(algorithm: &str, base32: &str, extra: &[&str]) -> String {
    let out = Command::new("oathtool")
        .arg(format!("--totp={algorithm}"))
        .arg("-b")
        .args(extra)
        .arg(base32)
        .output()
        .expect("oathtool installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Accounts that exist only for the programs they are given to
/// ([`FakeAccounts::apply`]): nss_wrapper (package libnss-wrapper) answers
/// their passwd and group look-ups and enumeration from private files, so
/// a test has exactly the accounts it made (thousands, if it likes)
/// without useradd and without the machine's own. Each home is a real
/// directory owned by the account's uid, mode 0700. Everything goes on
/// drop.
pub struct FakeAccounts {
    pub dir: testkit::harness::RootDir,
    passwd: std::path::PathBuf,
    group: std::path::PathBuf,
}

impl FakeAccounts {
    /// Only root, whose home is a private directory.
    pub fn new() -> FakeAccounts {
        testkit::require_root();
        let dir = testkit::harness::RootDir::new("nss", 0o755);
        let fake = FakeAccounts {
            passwd: dir.path.join("passwd"),
            group: dir.path.join("group"),
            dir,
        };
        let root_home = fake.dir.path.join("root");
        fs::create_dir(&root_home).unwrap();
        testkit::set_mode(&root_home, 0o700);
        testkit::write_mode(
            &fake.passwd,
            format!("root:x:0:0:root:{}:/bin/bash\n", root_home.display()),
            0o644,
        );
        testkit::write_mode(&fake.group, "root:x:0:\n", 0o644);
        fake
    }

    /// Adds `name` (uid and gid `uid`) with `shell` and a home of its own;
    /// the home.
    pub fn add(&self, name: &str, uid: u32, shell: &str) -> std::path::PathBuf {
        let home = self.dir.path.join("home").join(name);
        fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::lchown(&home, Some(uid), Some(uid)).unwrap();
        testkit::set_mode(&home, 0o700);
        self.add_entry(name, uid, shell, &home);
        home
    }

    /// Adds the passwd and group entries only (`home` as given).
    pub fn add_entry(&self, name: &str, uid: u32, shell: &str, home: &Path) {
        let append = |path: &Path, line: String| {
            let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(line.as_bytes()).unwrap();
        };
        append(
            &self.passwd,
            format!("{name}:x:{uid}:{uid}::{}:{shell}\n", home.display()),
        );
        append(&self.group, format!("{name}:x:{uid}:\n"));
    }

    /// Makes `cmd` see these accounts and no others.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("LD_PRELOAD", "libnss_wrapper.so")
            .env("NSS_WRAPPER_PASSWD", &self.passwd)
            .env("NSS_WRAPPER_GROUP", &self.group);
    }

    /// Writes `file` as `uid`'s secret file at `path` (mode 0600).
    pub fn write_secret(&self, path: &Path, uid: u32, file: &otp_core::secret_file::SecretFile) {
        fs::write(path, file.to_text().unwrap()).unwrap();
        std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
        testkit::set_mode(path, 0o600);
    }
}

/// `cmd` run as `uid` (real and effective, group `uid`, no other groups):
/// an account of [`FakeAccounts`], or any uid.
pub fn as_uid(uid: u32, cmd: &Command) -> Command {
    let mut out = Command::new("setpriv");
    out.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    out
}

/// Private accounts (nss_wrapper), a config naming `store` and a private
/// state_dir, for the commands that read every account (report) or print
/// JSON.
pub struct Setup {
    pub fake: FakeAccounts,
    pub config: PathBuf,
}

impl Setup {
    pub fn new(store: &str) -> Setup {
        let fake = FakeAccounts::new();
        let state = fake.dir.path.join("state");
        fs::create_dir(&state).unwrap();
        testkit::set_mode(&state, 0o755);
        let config = fake.dir.path.join("pam_otp.toml");
        testkit::write_mode(
            &config,
            format!(
                "store = {store:?}\nstate_dir = {:?}\n",
                state.to_str().unwrap()
            ),
            0o644,
        );
        Setup { fake, config }
    }

    pub fn state(&self) -> PathBuf {
        self.fake.dir.path.join("state")
    }

    /// otp-enroll with this config, seeing the private accounts.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = enroll();
        cmd.arg("--config").arg(&self.config).args(args);
        self.fake.apply(&mut cmd);
        cmd
    }
}
