//! The parts of Bitbucket's webhook payloads these rules read. Unknown
//! fields are skipped; a field the rules need and the payload lacks fails
//! decoding with its path.

use mapper_kit::{MapError, SignoffStatus, UserDirectory, malformed};
use serde::Deserialize;

/// Every event's body: each part is present only for some events.
#[derive(Deserialize)]
pub struct Payload {
    pub actor: Option<Account>,
    pub pullrequest: Option<PullRequest>,
    pub repository: Option<Repository>,
    pub approval: Option<UserStamp>,
    pub changes_request: Option<UserStamp>,
    pub comment: Option<Comment>,
    pub commit_status: Option<CommitStatus>,
    pub push: Option<Push>,
}

/// A part the event needs, or an error naming it.
pub fn required<'a, T>(part: &'a Option<T>, path: &str) -> Result<&'a T, MapError> {
    part.as_ref()
        .ok_or_else(|| malformed(format!("missing body field `{path}`")))
}

#[derive(Deserialize)]
pub struct Account {
    pub display_name: Option<String>,
    pub nickname: Option<String>,
    pub account_id: Option<String>,
    pub uuid: Option<String>,
}

impl Account {
    /// The same user: a stable id matches.
    pub fn same(&self, other: &Account) -> bool {
        let eq = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        eq(&self.uuid, &other.uuid) || eq(&self.account_id, &other.account_id)
    }

    /// The e-mail `user_directory` gives this account (by nickname,
    /// account id or uuid).
    pub fn email(&self, users: &UserDirectory<'_>) -> Result<String, MapError> {
        fn key(k: &Option<String>) -> &str {
            k.as_deref().unwrap_or("")
        }
        let who = match key(&self.display_name) {
            "" => format!("`{}`", key(&self.nickname)),
            name => format!("`{name}`"),
        };
        users.email(
            &[key(&self.nickname), key(&self.account_id), key(&self.uuid)],
            &who,
        )
    }
}

#[derive(Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Deserialize)]
pub struct PullRequest {
    pub id: u64,
    #[serde(default)]
    pub title: String,
    pub description: Option<String>,
    pub author: Option<Account>,
    pub source: Source,
    pub closed_by: Option<Account>,
    pub reason: Option<String>,
    #[serde(default)]
    pub reviewers: Vec<Account>,
    #[serde(default)]
    pub participants: Vec<Participant>,
    pub links: Option<Links>,
}

impl PullRequest {
    pub fn html_url(&self) -> Option<&str> {
        self.links.as_ref()?.html.as_ref().map(|l| l.href.as_str())
    }
}

#[derive(Deserialize)]
pub struct Source {
    pub branch: Branch,
}

#[derive(Deserialize)]
pub struct Branch {
    pub name: String,
}

#[derive(Deserialize)]
pub struct Links {
    pub html: Option<Link>,
}

#[derive(Deserialize)]
pub struct Link {
    pub href: String,
}

#[derive(Deserialize)]
pub struct Participant {
    pub user: Account,
    #[serde(default)]
    pub approved: bool,
    pub state: Option<String>,
}

impl Participant {
    pub fn status(&self) -> SignoffStatus {
        match (self.approved, self.state.as_deref()) {
            (true, _) | (_, Some("approved")) => SignoffStatus::Approved,
            (_, Some("changes_requested")) => SignoffStatus::Rejected,
            _ => SignoffStatus::Pending,
        }
    }
}

/// `approval` and `changes_request`: who and when.
#[derive(Deserialize)]
pub struct UserStamp {
    pub user: Account,
}

#[derive(Deserialize)]
pub struct Comment {
    pub id: u64,
    pub content: Content,
    pub user: Account,
}

#[derive(Deserialize)]
pub struct Content {
    pub raw: String,
}

#[derive(Deserialize)]
pub struct CommitStatus {
    pub state: String,
    pub refname: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
}

#[derive(Deserialize)]
pub struct Push {
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Deserialize)]
pub struct Change {
    pub new: Option<RefState>,
    #[serde(default)]
    pub commits: Vec<Commit>,
}

#[derive(Deserialize)]
pub struct RefState {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

#[derive(Deserialize)]
pub struct Commit {
    pub hash: String,
    pub message: String,
    pub author: CommitAuthor,
}

#[derive(Deserialize)]
pub struct CommitAuthor {
    pub raw: Option<String>,
    pub user: Option<Account>,
}
