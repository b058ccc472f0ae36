# /etc/profile.d/pam-otp.sh — first-login enrollment for pam_otp.
#
# When /etc/security/pam_otp.toml says `enroll_on_login = true`, an
# interactive login shell of a user who has no secret yet runs
# `otp-enroll new --if-missing`: it shows the QR code and saves the secret
# only after one right code. With `missing = "allow"` in the module this gives
# "log in with your password once, enroll, codes from then on". Interrupting
# it (Ctrl-C) or getting the code wrong changes nothing; it asks again at the
# next login.
#
# The config is read by otp-enroll itself (`status --enroll-on-login-enabled`
# exits 0 only when the key is true), with the module's own TOML parser: no
# pattern matching here to be fooled by comments, tables or quoting, and a
# broken config enrolls nobody. Root is left alone (its shells are for
# repairs). This file is sourced by the login shell: it must never exit,
# and it leaves no variables behind.

pam_otp_conf=${PAM_OTP_CONFIG:-/etc/security/pam_otp.toml}
case $- in
*i*)
    if [ -t 0 ] && [ -t 1 ] && [ "$(id -u)" != 0 ] && [ -r "$pam_otp_conf" ] \
        && command -v otp-enroll >/dev/null 2>&1 \
        && otp-enroll --config "$pam_otp_conf" status --enroll-on-login-enabled 2>/dev/null; then
        otp-enroll --config "$pam_otp_conf" new --if-missing || true
    fi
    ;;
esac
unset pam_otp_conf
