//! `otp-enroll scratch -n N`: new emergency codes, replacing the old.

use crate::error::Error;
use crate::target::Target;
use crate::{random, store};

pub fn run(t: &Target, n: usize) -> Result<(), Error> {
    if !(1..=20).contains(&n) {
        return Err(Error::usage("-n must be 1 to 20"));
    }
    let codes = random::scratch_codes(n)?;
    let saved = codes.clone();
    store::update(t, move |f| {
        f.scratch_codes = saved;
        Ok(((), true))
    })?;
    println!(
        "New emergency codes for {} (each works once; the old ones no longer work):",
        t.account.name
    );
    for c in codes {
        println!("  {c}");
    }
    Ok(())
}
