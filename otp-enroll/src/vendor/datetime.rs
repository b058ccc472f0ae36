//! XML Schema's `xs:dateTime` (PSKC's StartDate and ExpiryDate): the
//! reader is otp-core's ([`otp_core::date`]), which the config's dates
//! (`enforce_after`) and the command line's share, so that a DATE means
//! the same wherever it is written.

pub use otp_core::date::{format, parse};
