//! One file per subcommand.

pub mod import_google;
pub mod new;
pub mod remove;
pub mod resync;
pub mod scratch;
pub mod status;
pub mod token;
pub mod unlock;
