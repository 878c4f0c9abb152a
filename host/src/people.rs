//! The people directory: one person, an e-mail, and their id at each
//! provider, shared by every mapper through the `find-person` import.
//!
//! The store holds it (`people`, `person_identities`); the config's
//! `people:` are written there at start-up and `/v1/people` edits it. A
//! mapper call cannot wait on the database, so lookups read a
//! [`Directory`]: the whole directory in memory (people are few), reloaded
//! after every API write in this process and, for writes made by another
//! replica, when it is older than [`Directory::MAX_AGE`] as a batch starts.
//! Knows neither sqlx nor wasmtime: it reads through [`Store`] and answers
//! through [`People`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::PersonConfig;
use crate::mapper::{People, Person, PersonKey};
use crate::store::{NewPerson, PersonRow, Store, StoreError};

/// The directory as mapper calls read it; cheap to clone.
#[derive(Clone, Default)]
pub struct Directory {
    inner: Arc<RwLock<Index>>,
}

#[derive(Default)]
struct Index {
    by_email: HashMap<String, Person>,
    /// `(provider, id)` → e-mail.
    by_identity: HashMap<(String, String), String>,
    loaded: Option<Instant>,
}

impl Directory {
    /// How stale the copy may get before a batch reloads it: bounds how
    /// long another replica's API edit goes unseen here.
    pub const MAX_AGE: Duration = Duration::from_secs(10);

    /// An empty directory; [`Directory::refresh`] fills it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the config's people to the store, then loads the directory.
    pub async fn seed(store: &Store, people: &[PersonConfig]) -> Result<Self, StoreError> {
        let identities: Vec<Vec<(String, String)>> = people
            .iter()
            .map(|p| {
                p.identities
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect();
        let rows: Vec<NewPerson<'_>> = people
            .iter()
            .zip(&identities)
            .map(|(p, ids)| NewPerson {
                email: &p.email,
                name: p.name.as_deref(),
                identities: ids,
            })
            .collect();
        if !rows.is_empty() {
            store.seed_people(&rows).await?;
        }
        let directory = Self::new();
        directory.refresh(store).await?;
        Ok(directory)
    }

    /// Reloads every person from the store.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let rows = store.people().await?;
        self.replace(&rows);
        Ok(())
    }

    /// Reloads when the copy is older than [`Directory::MAX_AGE`].
    pub async fn refresh_if_stale(&self, store: &Store) -> Result<(), StoreError> {
        let stale = self
            .read()
            .loaded
            .is_none_or(|at| at.elapsed() >= Self::MAX_AGE);
        if stale {
            self.refresh(store).await?;
        }
        Ok(())
    }

    /// How many people it holds.
    pub fn len(&self) -> usize {
        self.read().by_email.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn replace(&self, rows: &[PersonRow]) {
        let mut index = Index {
            loaded: Some(Instant::now()),
            ..Index::default()
        };
        for row in rows {
            for (provider, id) in &row.identities {
                index
                    .by_identity
                    .insert((provider.clone(), id.clone()), row.email.clone());
            }
            index.by_email.insert(
                row.email.clone(),
                Person {
                    email: row.email.clone(),
                    name: row.name.clone(),
                    identities: row.identities.clone(),
                },
            );
        }
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        // A panic while the lock was held left a whole index behind (it
        // is replaced in one assignment), so a poisoned lock is still
        // sound to read.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl People for Directory {
    fn find(&self, key: &PersonKey) -> Option<Person> {
        let index = self.read();
        let email = match key {
            PersonKey::Email(e) => e.to_lowercase(),
            PersonKey::Identity { provider, id } => index
                .by_identity
                .get(&(provider.clone(), id.clone()))?
                .clone(),
        };
        index.by_email.get(&email).cloned()
    }
}

/// Longest e-mail, name and id the directory takes, in characters.
pub const EMAIL_MAX: usize = 254;
pub const NAME_MAX: usize = 200;
pub const ID_MAX: usize = 200;

/// An e-mail the directory accepts: one `@` with text on both sides, no
/// spaces or control characters, at most [`EMAIL_MAX`] characters.
pub fn check_email(email: &str) -> Result<(), String> {
    let ok = email.chars().count() <= EMAIL_MAX
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{email}` is not an e-mail address"))
    }
}

/// A provider name (lower-case letters, digits, `_` and `-`) and a
/// non-empty id without control characters, at most [`ID_MAX`] characters.
pub fn check_identity(provider: &str, id: &str) -> Result<(), String> {
    if provider.is_empty()
        || provider.len() > 64
        || !provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "provider `{provider}` must be lower-case letters, digits, `_` or `-`"
        ));
    }
    if id.is_empty() || id.chars().count() > ID_MAX || id.chars().any(char::is_control) {
        return Err(format!(
            "the {provider} id must be 1 to {ID_MAX} characters without control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(email: &str, ids: &[(&str, &str)]) -> PersonRow {
        PersonRow {
            email: email.into(),
            name: Some("Ann".into()),
            identities: ids
                .iter()
                .map(|(p, i)| ((*p).into(), (*i).into()))
                .collect(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn finds_by_identity_and_by_email_in_any_case() {
        let d = Directory::new();
        d.replace(&[
            row("ann@x.io", &[("github", "ann-l"), ("slack", "U1")]),
            row("bob@x.io", &[]),
        ]);
        let key = |p: &str, i: &str| PersonKey::Identity {
            provider: p.into(),
            id: i.into(),
        };
        assert_eq!(d.find(&key("slack", "U1")).unwrap().email, "ann@x.io");
        assert_eq!(
            d.find(&PersonKey::Email("ANN@X.io".into()))
                .unwrap()
                .identities
                .len(),
            2
        );
        assert_eq!(d.find(&key("github", "U1")), None);
        assert_eq!(d.find(&key("gitlab", "ann-l")), None);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn checks_name_the_fault() {
        assert!(check_email("ann@x.io").is_ok());
        for bad in ["ann", "@x.io", "ann@", "a b@x.io", "a@b@c"] {
            assert!(check_email(bad).unwrap_err().contains(bad), "{bad}");
        }
        assert!(check_identity("github", "ann").is_ok());
        assert!(
            check_identity("GitHub", "ann")
                .unwrap_err()
                .contains("GitHub")
        );
        assert!(
            check_identity("slack", "U\u{1b}")
                .unwrap_err()
                .contains("slack id")
        );
    }
}
