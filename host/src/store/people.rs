//! The people directory's rows and the mappers' state: `people`,
//! `person_identities` and `mapper_state`.
//!
//! People are few and read whole into memory (`crate::people::Directory`);
//! the writes here are the API's and the config seeding's. Mapper state is
//! read once per batch for the providers mapped, and written only by
//! [`Tx::commit_state`], a compare-and-set inside the transaction that
//! applies the delivery whose mapping made the writes.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use super::query::params;
use super::{Store, StoreError, Tx, now};
use crate::mapper::StateWrite;

/// One person as stored: e-mail (lower-case), display name, and their
/// `(provider, id)` identities, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub email: String,
    pub name: Option<String>,
    pub identities: Vec<(String, String)>,
    pub updated_at: String,
}

/// A person to write: e-mail, display name, `(provider, id)` identities.
#[derive(Debug, Clone, Copy)]
pub struct NewPerson<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub identities: &'a [(String, String)],
}

/// What [`Store::put_person`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutPerson {
    Created(PersonRow),
    Updated(PersonRow),
    /// The identity belongs to another person; nothing was written.
    IdentityTaken {
        provider: String,
        id: String,
        email: String,
    },
}

/// One key of a provider's mapper state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub provider: String,
    pub key: String,
    pub value: String,
    pub updated_at: String,
}

impl Store {
    /// Every person, by e-mail.
    pub async fn people(&self) -> Result<Vec<PersonRow>, StoreError> {
        let mut people: BTreeMap<String, PersonRow> = BTreeMap::new();
        for row in sqlx::query("SELECT email, name, updated_at FROM people")
            .fetch_all(self.read_pool())
            .await?
        {
            let email: String = row.try_get("email")?;
            people.insert(
                email.clone(),
                PersonRow {
                    email,
                    name: row.try_get("name")?,
                    identities: Vec::new(),
                    updated_at: row.try_get("updated_at")?,
                },
            );
        }
        for row in sqlx::query(
            "SELECT provider, external_id, email FROM person_identities \
             ORDER BY provider, external_id",
        )
        .fetch_all(self.read_pool())
        .await?
        {
            let email: String = row.try_get("email")?;
            if let Some(p) = people.get_mut(&email) {
                p.identities
                    .push((row.try_get("provider")?, row.try_get("external_id")?));
            }
        }
        Ok(people.into_values().collect())
    }

    /// The person with this e-mail (any case).
    pub async fn person(&self, email: &str) -> Result<Option<PersonRow>, StoreError> {
        let email = email.to_lowercase();
        let Some(row) = sqlx::query("SELECT email, name, updated_at FROM people WHERE email = $1")
            .bind(&email)
            .fetch_optional(self.read_pool())
            .await?
        else {
            return Ok(None);
        };
        let identities = sqlx::query(
            "SELECT provider, external_id FROM person_identities WHERE email = $1 \
             ORDER BY provider, external_id",
        )
        .bind(&email)
        .fetch_all(self.read_pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("provider")?, r.try_get("external_id")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some(PersonRow {
            email,
            name: row.try_get("name")?,
            identities,
            updated_at: row.try_get("updated_at")?,
        }))
    }

    /// Creates or replaces a person: name and the whole set of identities.
    /// An identity held by someone else refuses the write.
    pub async fn put_person(
        &self,
        email: &str,
        name: Option<&str>,
        identities: &[(String, String)],
    ) -> Result<PutPerson, StoreError> {
        let mut tx = self.begin().await?;
        let email = email.to_lowercase();
        for (provider, id) in identities {
            let holder: Option<String> = sqlx::query(
                "SELECT email FROM person_identities WHERE provider = $1 AND external_id = $2",
            )
            .bind(provider)
            .bind(id)
            .fetch_optional(tx.conn().await?)
            .await?
            .map(|r| r.try_get("email"))
            .transpose()?;
            if let Some(holder) = holder.filter(|h| *h != email) {
                return Ok(PutPerson::IdentityTaken {
                    provider: provider.clone(),
                    id: id.clone(),
                    email: holder,
                });
            }
        }
        let (created, updated_at) = write_person(&mut tx, &email, name, identities).await?;
        tx.commit().await?;
        // What was written, not a read after the commit: a concurrent
        // delete may already have removed it.
        let mut identities = identities.to_vec();
        identities.sort();
        let row = PersonRow {
            email,
            name: name.map(str::to_owned),
            identities,
            updated_at,
        };
        Ok(if created {
            PutPerson::Created(row)
        } else {
            PutPerson::Updated(row)
        })
    }

    /// Writes the config's people in one transaction: each replaces the
    /// stored person of that e-mail, and takes its identities from whoever
    /// held them (the config is the operator's word).
    pub async fn seed_people(&self, people: &[NewPerson<'_>]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for person in people {
            let email = person.email.to_lowercase();
            for (provider, id) in person.identities {
                sqlx::query(
                    "DELETE FROM person_identities WHERE provider = $1 AND external_id = $2",
                )
                .bind(provider)
                .bind(id)
                .execute(tx.conn().await?)
                .await?;
            }
            write_person(&mut tx, &email, person.name, person.identities).await?;
        }
        tx.commit().await
    }

    /// Deletes a person and their identities; false when there was none.
    pub async fn delete_person(&self, email: &str) -> Result<bool, StoreError> {
        let email = email.to_lowercase();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM person_identities WHERE email = $1")
            .bind(&email)
            .execute(tx.conn().await?)
            .await?;
        let gone = sqlx::query("DELETE FROM people WHERE email = $1")
            .bind(&email)
            .execute(tx.conn().await?)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// The mapper state of `providers`, by provider and key.
    pub async fn mapper_state(&self, providers: &[&str]) -> Result<Vec<StateEntry>, StoreError> {
        if providers.is_empty() {
            return Ok(Vec::new());
        }
        // Audited: only numbered placeholders are spliced in.
        let sql = format!(
            "SELECT provider, key, value, updated_at FROM mapper_state \
             WHERE provider IN ({}) ORDER BY provider, key",
            params(1, providers.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in providers {
            q = q.bind(*p);
        }
        q.fetch_all(self.read_pool())
            .await?
            .iter()
            .map(|r| {
                Ok(StateEntry {
                    provider: r.try_get("provider")?,
                    key: r.try_get("key")?,
                    value: r.try_get("value")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }
}

impl Tx {
    /// Applies a mapping's state writes, each a compare-and-set against
    /// the stored value; the first whose stored value is no longer the one
    /// the mapping saw is returned (its key), and the caller rolls the
    /// transaction back. Statements do the comparing, so two transactions
    /// racing on one key cannot both win: on PostgreSQL the second waits
    /// for the first's row lock and then finds the value changed.
    pub async fn commit_state(
        &mut self,
        provider: &str,
        writes: &[StateWrite],
    ) -> Result<Option<String>, StoreError> {
        let at = now();
        for w in writes {
            let changed = match (&w.expected, &w.value) {
                (Some(expected), Some(value)) => sqlx::query(
                    "UPDATE mapper_state SET value = $1, updated_at = $2 \
                     WHERE provider = $3 AND key = $4 AND value = $5",
                )
                .bind(value)
                .bind(&at)
                .bind(provider)
                .bind(&w.key)
                .bind(expected),
                (None, Some(value)) => sqlx::query(
                    "INSERT INTO mapper_state (provider, key, value, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (provider, key) DO NOTHING",
                )
                .bind(provider)
                .bind(&w.key)
                .bind(value)
                .bind(&at),
                (Some(expected), None) => sqlx::query(
                    "DELETE FROM mapper_state WHERE provider = $1 AND key = $2 AND value = $3",
                )
                .bind(provider)
                .bind(&w.key)
                .bind(expected),
                // Deleting what the mapping saw absent: it must still be.
                (None, None) => {
                    let present =
                        sqlx::query("SELECT 1 FROM mapper_state WHERE provider = $1 AND key = $2")
                            .bind(provider)
                            .bind(&w.key)
                            .fetch_optional(self.conn().await?)
                            .await?;
                    if present.is_some() {
                        return Ok(Some(w.key.clone()));
                    }
                    continue;
                }
            }
            .execute(self.conn().await?)
            .await?
            .rows_affected();
            if changed != 1 {
                return Ok(Some(w.key.clone()));
            }
        }
        Ok(None)
    }
}

/// Upserts the person row and replaces their identities; whether the
/// person is new, and the time written.
async fn write_person(
    tx: &mut Tx,
    email: &str,
    name: Option<&str>,
    identities: &[(String, String)],
) -> Result<(bool, String), StoreError> {
    let at = now();
    let existed = sqlx::query("SELECT 1 FROM people WHERE email = $1")
        .bind(email)
        .fetch_optional(tx.conn().await?)
        .await?
        .is_some();
    sqlx::query(
        "INSERT INTO people (email, name, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
    )
    .bind(email)
    .bind(name)
    .bind(&at)
    .execute(tx.conn().await?)
    .await?;
    sqlx::query("DELETE FROM person_identities WHERE email = $1")
        .bind(email)
        .execute(tx.conn().await?)
        .await?;
    for (provider, id) in identities {
        sqlx::query(
            "INSERT INTO person_identities (provider, external_id, email) VALUES ($1, $2, $3)",
        )
        .bind(provider)
        .bind(id)
        .bind(email)
        .execute(tx.conn().await?)
        .await?;
    }
    Ok((!existed, at))
}
