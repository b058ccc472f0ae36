//! `otp-enroll remove [--token ID]`: remove one token, or all of them
//! (the secret file).

use crate::commands::new::ids;
use crate::error::Error;
use crate::output::say;
use crate::prompt;
use crate::store::{self, Edit};
use crate::target::Target;

pub fn run(t: &Target, token: Option<String>, yes: bool, force: bool) -> Result<(), Error> {
    let path = t.path_str();
    if !store::exists(t)? {
        return Err(Error::NotEnrolled {
            user: t.account.name.clone(),
            path,
        });
    }
    match token {
        Some(id) => remove_one(t, &id, yes),
        None => remove_all(t, yes, force),
    }
}

fn ask(question: &str, yes: bool) -> Result<(), Error> {
    if !yes && prompt::stdin_is_terminal() && !prompt::confirm(question) {
        return Err(Error::refused("not removed"));
    }
    Ok(())
}

fn remove_one(t: &Target, id: &str, yes: bool) -> Result<(), Error> {
    let name = &t.account.name;
    ask(&format!("Remove the token \"{id}\" of {name}? [y/N] "), yes)?;
    let left = store::edit(t, |file| {
        let Some(at) = file.tokens.iter().position(|x| x.id == id) else {
            return Err(Error::refused(format!(
                "{name} has no token \"{id}\" (they have {}): nothing was changed",
                ids(file)
            )));
        };
        file.tokens.remove(at);
        if file.tokens.is_empty() {
            Ok((None, Edit::Delete))
        } else {
            Ok((Some(ids(file)), Edit::Save))
        }
    })?;
    match left {
        Some(left) => say!("Removed the token \"{id}\" of {name}; left: {left}."),
        None => say!(
            "Removed the token \"{id}\", the last of {name}: {} is deleted, with the emergency codes; {name} no longer has a two-factor secret.",
            t.path_str()
        ),
    }
    Ok(())
}

fn remove_all(t: &Target, yes: bool, force: bool) -> Result<(), Error> {
    let (name, path) = (&t.account.name, t.path_str());
    // A file that cannot be read can be removed all the same; one that
    // holds several tokens goes only when asked for by --force.
    let held = store::read(t).ok();
    if let Some(file) = &held {
        if file.tokens.len() > 1 && !force {
            return Err(Error::refused(format!(
                "{name} has {} tokens ({}): name one with --token ID, or remove them all with --force; nothing was changed",
                file.tokens.len(),
                ids(file)
            )));
        }
    }
    ask(
        &format!("Remove the two-factor secret of {name} ({path})? [y/N] "),
        yes,
    )?;
    store::remove(t)?;
    match &held {
        Some(file) => say!(
            "Removed {path} (tokens {}, and the emergency codes): {name} no longer has a two-factor secret.",
            ids(file)
        ),
        None => say!("Removed {path}: {name} no longer has a two-factor secret."),
    }
    Ok(())
}
