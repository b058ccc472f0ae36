//! The shortest real login: a right code through libpam, then its replay.
use testkit::{oathtool_totp, wait_for_fresh_step, PamService, TestUser};

#[test]
fn right_code_then_replay() {
    let user = TestUser::new();
    user.write_secret(
        "version = 1\ntype = \"totp\"\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n",
    );
    let svc = PamService::new("auth required {module}\n");
    wait_for_fresh_step(5);
    let code = oathtool_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", None, &[]);
    let first = svc.authenticate(&user.name, Some("203.0.113.7"), &format!("{code}\n"));
    assert!(first.success, "{first:?}");
    let again = svc.authenticate(&user.name, Some("203.0.113.7"), &format!("{code}\n"));
    assert!(!again.success, "replay accepted: {again:?}");
}
