//! otp-enroll end to end: the real binary, real users, the real libpam with
//! the built module, oathtool as the independent code generator, zbarimg
//! as the QR reader.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};

use testkit::{
    binary_path, oathtool_hotp_hex, oathtool_totp, wait_for_fresh_step, PamService, TestUser,
};

const RFC4226_HEX: &str = "3132333435363738393031323334353637383930";

fn enroll() -> Command {
    Command::new(binary_path("otp-enroll"))
}

fn run(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
        .trim()
}

/// The half-block QR code printed by `new`, as a plain PBM image with 4x4
/// pixels per module ('▀' = dark top, '▄' = dark bottom, '█' both).
fn qr_to_pbm(out: &str) -> String {
    let lines: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Scan this QR code"))
        .skip(1)
        .take_while(|l| !l.starts_with("Or add it by hand"))
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() > 10, "no QR code in:\n{out}");
    let width = lines[0].chars().count();
    let scale = 4;
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for l in &lines {
        let chars: Vec<char> = l.chars().collect();
        assert_eq!(chars.len(), width, "ragged QR line {l:?}");
        let top: Vec<u8> = chars
            .iter()
            .map(|c| u8::from(matches!(c, '▀' | '█')))
            .collect();
        let bottom: Vec<u8> = chars
            .iter()
            .map(|c| u8::from(matches!(c, '▄' | '█')))
            .collect();
        rows.push(top);
        rows.push(bottom);
    }
    let mut pbm = format!("P1\n{} {}\n", width * scale, rows.len() * scale);
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .flat_map(|&b| std::iter::repeat_n(b.to_string(), scale))
            .collect();
        for _ in 0..scale {
            pbm.push_str(&line.join(" "));
            pbm.push('\n');
        }
    }
    pbm
}

#[test]
fn printed_qr_code_decodes_to_the_printed_uri_and_key() {
    let user = TestUser::new();
    let mut cmd = enroll();
    cmd.args([
        "--user",
        &user.name,
        "new",
        "--no-confirm",
        "--qr",
        "utf8",
        "--issuer",
        "ACME Co",
    ]);
    let out = run(cmd, "");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let uri = field(&stdout, "URI:").to_string();
    let b32 = field(&stdout, "Key:")
        .trim_end_matches("(base32)")
        .trim()
        .replace(' ', "");
    let hex = field(&stdout, "Hex:").to_string();

    let img = user.home.join("qr.pbm");
    fs::write(&img, qr_to_pbm(&stdout)).unwrap();
    let z = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&img)
        .output()
        .expect("zbarimg installed");
    assert!(
        z.status.success(),
        "zbarimg could not read the QR code: {}",
        String::from_utf8_lossy(&z.stderr)
    );
    assert_eq!(String::from_utf8(z.stdout).unwrap().trim_end(), uri);

    assert!(
        uri.starts_with(&format!("otpauth://totp/ACME%20Co:{}%40", user.name)),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={b32}&")), "{uri}");
    assert_eq!(
        pam_otp::key::decode_base32(&b32).unwrap(),
        pam_otp::key::decode_hex(&hex).unwrap()
    );
    assert_eq!(b32.len(), 32, "160-bit key");
}

#[test]
fn enrolled_secret_logs_in_with_an_oathtool_code() {
    let user = TestUser::new();
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "new", "--no-confirm", "--qr", "none"]);
    let out = run(cmd, "");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let b32 = field(&stdout, "Key:")
        .trim_end_matches("(base32)")
        .trim()
        .replace(' ', "");
    let meta = fs::metadata(user.secret_path()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o600));

    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let code = oathtool_totp(&b32, None, &[]);
    assert!(
        svc.authenticate(&user.name, Some("203.0.113.3"), &format!("{code}\n"))
            .success
    );
    // An emergency code printed by new works once.
    let scratch: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(scratch.len(), 5, "{stdout}");
    assert!(
        svc.authenticate(&user.name, None, &format!("{}\n", scratch[0]))
            .success
    );
    assert!(
        !svc.authenticate(&user.name, None, &format!("{}\n", scratch[0]))
            .success
    );
}

#[test]
fn confirmation_saves_only_after_a_right_code_as_the_user_themselves() {
    let user = TestUser::new();
    let key = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    // Three wrong codes: nothing written.
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["new", "--secret", key, "--qr", "none"]);
    let out = run(cmd, "000000\n111111\n222222\n");
    assert!(!out.status.success());
    assert!(text(&out).contains("nothing was saved"), "{}", text(&out));
    assert!(!user.secret_path().exists());
    // No answer at all: nothing written.
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["new", "--secret", key, "--qr", "none"]);
    assert!(!run(cmd, "").status.success());
    assert!(!user.secret_path().exists());
    // A wrong code, then the right one: saved, the user's, 0600.
    wait_for_fresh_step(5);
    let code = oathtool_totp(key, None, &[]);
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["new", "--secret", key, "--qr", "none"]);
    let out = run(cmd, &format!("999999\n{code}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let meta = fs::metadata(user.secret_path()).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (user.uid, user.gid, 0o600)
    );
    // The confirming code was used: it cannot log in again.
    let svc = PamService::new("auth required {module}\n");
    assert!(
        !svc.authenticate(&user.name, None, &format!("{code}\n"))
            .success
    );

    // No overwrite without --force; --if-missing is quiet and changes nothing.
    let before = fs::read(user.secret_path()).unwrap();
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["new", "--no-confirm", "--qr", "none"]);
    let out = run(cmd, "");
    assert!(!out.status.success());
    assert!(text(&out).contains("--force"), "{}", text(&out));
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["new", "--if-missing", "--qr", "none"]);
    let out = run(cmd, "");
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "--if-missing printed {}", text(&out));
    assert_eq!(fs::read(user.secret_path()).unwrap(), before);
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["new", "--force", "--no-confirm", "--qr", "none"]);
    assert!(run(cmd, "").status.success());
    assert_ne!(fs::read(user.secret_path()).unwrap(), before);
}

#[test]
fn status_never_shows_the_secret_and_admin_commands_work() {
    let user = TestUser::new();
    let other = TestUser::new();
    let key = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let mut cmd = enroll();
    cmd.args([
        "--user",
        &user.name,
        "new",
        "--secret",
        key,
        "--no-confirm",
        "--qr",
        "none",
    ]);
    assert!(run(cmd, "").status.success());
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "status"]);
    let out = run(cmd, "");
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(
        s.contains("TOTP") && s.contains("emergency codes: 5 left") && s.contains("not locked"),
        "{s}"
    );
    for secret_form in [
        key,
        "JBSW Y3DP",
        "48656c6c",
        &pam_otp::key::encode_hex(&pam_otp::key::decode_base32(key).unwrap()),
    ] {
        assert!(!s.contains(secret_form), "status shows the secret: {s}");
    }
    // A non-root user cannot act for someone else.
    let mut cmd = other.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.args(["--user", &user.name, "status"]);
    let out = run(cmd, "");
    assert!(!out.status.success());
    assert!(text(&out).contains("only root"), "{}", text(&out));

    // Lock the user out through PAM, then unlock as admin.
    let svc = PamService::new("auth required {module}\n");
    for _ in 0..3 {
        assert!(!svc.authenticate(&user.name, None, "000000\n").success);
    }
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "status"]);
    assert!(text(&run(cmd, "")).contains("locked for"));
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "unlock"]);
    assert!(run(cmd, "").status.success());
    wait_for_fresh_step(5);
    let code = oathtool_totp(key, None, &[]);
    assert!(
        svc.authenticate(&user.name, None, &format!("{code}\n"))
            .success,
        "unlock did not clear the lock"
    );

    // New emergency codes replace the old ones.
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "scratch", "-n", "3"]);
    let out = run(cmd, "");
    let codes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(codes.len(), 3);
    assert!(
        svc.authenticate(&user.name, None, &format!("{}\n", codes[1]))
            .success
    );
    let meta = fs::metadata(user.secret_path()).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (user.uid, 0o600),
        "admin writes keep the user's ownership"
    );

    // Remove (stdin is not a terminal: no question).
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "remove"]);
    assert!(run(cmd, "").status.success());
    assert!(!user.secret_path().exists());
    let mut cmd = enroll();
    cmd.args(["--user", &user.name, "status"]);
    assert_eq!(run(cmd, "").status.code(), Some(1));
}

#[test]
fn hardware_token_association_lookahead_and_resync() {
    let user = TestUser::new();
    let token = |args: &[&str]| {
        let mut cmd = enroll();
        cmd.args([
            "--user",
            &user.name,
            "token",
            "--serial",
            "OATH00012345",
            "--secret",
            RFC4226_HEX,
        ])
        .args(args);
        run(cmd, "")
    };
    // A wrong code: refused, nothing written.
    let out = token(&["--code", "000000"]);
    assert!(!out.status.success());
    assert!(!user.secret_path().exists());
    // The token was pressed 5 times before: code at counter 5.
    let out = token(&["--code", &oathtool_hotp_hex(RFC4226_HEX, 5)]);
    assert!(out.status.success(), "{}", text(&out));
    let f =
        pam_otp::secret_file::SecretFile::parse(&fs::read_to_string(user.secret_path()).unwrap())
            .unwrap();
    assert_eq!((f.counter, f.serial.as_deref()), (6, Some("OATH00012345")));

    let svc = PamService::new("auth required {module}\n");
    // Look-ahead at login: counter 9 while 6 is expected.
    assert!(
        svc.authenticate(
            &user.name,
            None,
            &format!("{}\n", oathtool_hotp_hex(RFC4226_HEX, 9))
        )
        .success
    );
    // Far ahead (counter 500): login refused; resync with 500, 501.
    assert!(
        !svc.authenticate(
            &user.name,
            None,
            &format!("{}\n", oathtool_hotp_hex(RFC4226_HEX, 500))
        )
        .success
    );
    let resync = |a: u64, b: u64| {
        let mut cmd = enroll();
        cmd.args([
            "--user",
            &user.name,
            "resync",
            &oathtool_hotp_hex(RFC4226_HEX, a),
            &oathtool_hotp_hex(RFC4226_HEX, b),
        ]);
        run(cmd, "")
    };
    let out = resync(500, 502);
    assert!(!out.status.success(), "non-consecutive codes accepted");
    let out = resync(501, 502);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("counter now 503"), "{}", text(&out));
    // The resync codes are used up; the next one works.
    for c in [501, 502] {
        assert!(
            !svc.authenticate(
                &user.name,
                None,
                &format!("{}\n", oathtool_hotp_hex(RFC4226_HEX, c))
            )
            .success
        );
    }
    assert!(
        svc.authenticate(
            &user.name,
            None,
            &format!("{}\n", oathtool_hotp_hex(RFC4226_HEX, 503))
        )
        .success
    );
    // Replacing a token needs --force.
    assert!(!token(&["--code", &oathtool_hotp_hex(RFC4226_HEX, 700)])
        .status
        .success());
}

#[test]
fn imported_google_authenticator_file_works() {
    let user = TestUser::new();
    let key = "GHSRB5Q7UU4JBGQUNM4WHIUVQE";
    let ga = user.home.join(".google_authenticator");
    fs::write(&ga, format!("{key}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n59204058\n67424791\n35582731\n")).unwrap();
    user.chown(&ga);
    fs::set_permissions(&ga, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    let mut cmd = user.command(binary_path("otp-enroll").to_str().unwrap());
    cmd.arg("import-google");
    let out = run(cmd, "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(ga.exists(), "the old file must stay");
    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let code = oathtool_totp(key, None, &[]);
    assert!(
        svc.authenticate(&user.name, None, &format!("{code}\n"))
            .success
    );
    assert!(svc.authenticate(&user.name, None, "67424791\n").success);
    assert!(!svc.authenticate(&user.name, None, "67424791\n").success);
}
