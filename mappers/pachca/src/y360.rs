//! The Yandex 360 directory: a Yandex login's e-mail, for the logins the
//! people directory and `login@email_domain` do not place in Pachca (the
//! seed's `Y360_OAUTH` / `Y360_ORG_ID`).
//!
//! Read through the provider's extra API (`Sluice-Api: y360` by default;
//! `api.extra.y360` in the host's config holds the base URL
//! `https://api360.yandex.net` and the `OAuth` token, which the mapper never
//! sees): `GET /directory/v1/org/{orgId}/users?perPage=1000&page=N`, whose
//! answer is `{"users": [{"nickname", "email", "aliases", …}], "page",
//! "pages", …}`. The list is read at most once per mapping, and the host's
//! GET cache (`api.extra.y360.cache_ttl_secs`) spares the next mappings.

use mapper_kit::{MapError, get_json_from, internal};
use serde_json::Value;

use crate::Config;

/// Users per page: the API's maximum.
const PER_PAGE: u32 = 1000;

/// Pages read at most: an organisation of up to 2,000 people, in two of
/// the mapping's sixteen calls.
const PAGES_MAX: u64 = 2;

/// One person of the directory.
struct User {
    /// The login (`nickname`) and its aliases.
    logins: Vec<String>,
    email: String,
}

/// The directory as one mapping sees it: read on first use.
#[derive(Default)]
pub(crate) struct Y360 {
    users: Option<Vec<User>>,
}

impl Y360 {
    /// The e-mail of Yandex login `login`; `None` when the directory is not
    /// configured (`y360_org_id`) or does not list the login.
    pub(crate) fn email_of(
        &mut self,
        cfg: &Config,
        login: &str,
    ) -> Result<Option<String>, MapError> {
        let Some(org) = &cfg.y360_org_id else {
            return Ok(None);
        };
        if self.users.is_none() {
            self.users = Some(read(cfg, org)?);
        }
        Ok(self.users.iter().flatten().find_map(|u| {
            u.logins
                .iter()
                .any(|l| l.eq_ignore_ascii_case(login))
                .then(|| u.email.clone())
        }))
    }
}

/// Every page of the organisation's users, up to [`PAGES_MAX`].
fn read(cfg: &Config, org: &str) -> Result<Vec<User>, MapError> {
    let mut users = Vec::new();
    for page in 1..=PAGES_MAX {
        let path = format!("/directory/v1/org/{org}/users?perPage={PER_PAGE}&page={page}");
        let answer = get_json_from(&cfg.y360_api, &path)?;
        let list = answer["users"].as_array().ok_or_else(|| {
            internal(format!(
                "GET {path} ({}): answer has no `users`",
                cfg.y360_api
            ))
        })?;
        users.extend(list.iter().filter_map(user));
        if answer["pages"].as_u64().is_none_or(|pages| page >= pages) {
            break;
        }
    }
    Ok(users)
}

fn user(u: &Value) -> Option<User> {
    let email = u["email"].as_str().filter(|e| e.contains('@'))?.to_owned();
    let mut logins: Vec<String> = u["nickname"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .into_iter()
        .collect();
    logins.extend(
        u["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned),
    );
    Some(User { logins, email })
}
