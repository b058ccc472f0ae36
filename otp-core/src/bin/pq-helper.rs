//! `pq-helper`: libpq for pam_otp, in a process of its own, started by the
//! module and `otp-enroll` with an empty environment (otp_core::pq). Not a
//! command for people: installed in /usr/libexec/pam_otp/.

fn main() -> std::process::ExitCode {
    otp_core::pq::serve_helper()
}
