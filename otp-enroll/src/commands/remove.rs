//! `otp-enroll remove [--token ID]`: remove one token, or all of them
//! (the secret file).

use otp_core::secret_file::Token;

use crate::commands::new::ids;
use crate::error::Error;
use crate::inventory::{self, Inventory};
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
    let name = &t.shown_name();
    ask(&format!("Remove the token \"{id}\" of {name}? [y/N] "), yes)?;
    let left = store::edit(t, |file| {
        let Some(at) = file.tokens.iter().position(|x| x.id == id) else {
            return Err(Error::refused(format!(
                "{name} has no token \"{id}\" (they have {}): nothing was changed",
                ids(file)
            )));
        };
        let gone = file.tokens.remove(at);
        if file.tokens.is_empty() && file.temp_code.is_some() {
            // The temporary code of a lost phone stays, and the record
            // with it (a record may hold the code alone).
            Ok(((gone, Some("the temporary code".to_string())), Edit::Save))
        } else if file.tokens.is_empty() {
            Ok(((gone, None), Edit::Delete))
        } else {
            Ok(((gone, Some(ids(file))), Edit::Save))
        }
    })?;
    let (gone, left) = left;
    match left {
        Some(left) => say!("Removed the token \"{id}\" of {name}; left: {left}."),
        None => say!(
            "Removed the token \"{id}\", the last of {name}: {} is deleted, with the emergency codes; {name} no longer has a two-factor secret.",
            t.shown_path()
        ),
    }
    return_to_inventory(t, std::slice::from_ref(&gone))
}

/// Hardware tokens from the inventory go back to it, unassigned, with the
/// counter they reached (so a code used before is not good again when the
/// token is handed to someone else). Only root can change the inventory.
pub fn return_to_inventory(t: &Target, gone: &[Token]) -> Result<(), Error> {
    let serials: Vec<(&str, u64)> = gone
        .iter()
        .filter_map(|tok| tok.serial.as_deref().map(|s| (s, tok.counter)))
        .collect();
    if serials.is_empty() || !Inventory::exists(&t.config) {
        return Ok(());
    }
    if !inventory::is_root() {
        say!("(Hardware tokens stay assigned in the inventory until root removes them there too.)");
        return Ok(());
    }
    let mut inv = Inventory::open(&t.config)?;
    let mut returned = Vec::new();
    for (serial, counter) in serials {
        if let Some(entry) = inv.find_mut(serial) {
            if entry.assigned_to.as_deref() == Some(t.account.name.as_str()) {
                entry.assigned_to = None;
                entry.token.counter = entry.token.counter.max(counter);
                returned.push(format!(
                    "{} (counter {})",
                    crate::output::shown(serial),
                    entry.token.counter
                ));
            }
        }
    }
    if returned.is_empty() {
        return Ok(());
    }
    inv.save()?;
    say!(
        "Back in the inventory, unassigned: {}.",
        returned.join(", ")
    );
    Ok(())
}

fn remove_all(t: &Target, yes: bool, force: bool) -> Result<(), Error> {
    let (name, path) = (&t.shown_name(), t.shown_path());
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
    let gone = held.as_ref().map(|f| f.tokens.clone()).unwrap_or_default();
    match &held {
        Some(file) => say!(
            "Removed {path} (tokens {}, and the emergency codes): {name} no longer has a two-factor secret.",
            ids(file)
        ),
        None => say!("Removed {path}: {name} no longer has a two-factor secret."),
    }
    return_to_inventory(t, &gone)
}
