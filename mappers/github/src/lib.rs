//! GitHub mapping rules.
//!
//! Event name in `X-GitHub-Event`, the event's action in the body's `action`.
//! No payload carries a user's e-mail (push commits aside), so users are
//! looked up in `mapper_config.user_directory` by login. Pull-request events
//! refer to their ticket by the PR's external id (`owner/repo#number`) and
//! its head branch, so both a ticket branch and a ticket this mapper created
//! for the PR resolve. Two rows read the REST API through `provider-api`: an
//! approval reads the PR's reviews to decide whether it completes the set
//! (when the API is not configured or fails, the reviewer's C sign-off is
//! still recorded and A is left to a later approval), and a PR comment (an `issue_comment`, which names no branch) reads the PR.
//!
//! Config keys: `user_directory` (required for PR events), `activity`
//! (default `Development`), `ticket_type` (default `FEATURE`),
//! `default_priority` (default `MEDIUM`), `ci_actor` (default
//! `github-actions`).

use mapper_kit::{
    Action, ApiError, ApiRequest, CreateTicket, Delivery, Escalate, Fields, Guest, Header, LinkPr,
    LogLevel, MapError, MapResult, OutboundRequest, Priority, RaciRole, Resolve, SignoffStatus,
    TicketChange, TicketRef, UserDirectory, branch_ticket_guid, comment, config_priority,
    config_str, created_by, header, ignored, internal, json_body, log, mapped, parse_config,
    provider_api, signoff, ticket_ref, unsupported,
};
use serde_json::Value;

struct Github;

mapper_kit::bindings::export!(Github with_types_in mapper_kit::bindings);

impl Guest for Github {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        let event = header(&delivery, "x-github-event")
            .ok_or_else(|| mapper_kit::malformed("missing header `x-github-event`"))?
            .to_owned();
        let body = json_body(&delivery)?;
        let ctx = Ctx {
            body: &body,
            config: &config,
            users: UserDirectory::from_config(&config, "github")?,
        };
        let action = body.opt_str("/action")?.unwrap_or("");
        match (event.as_str(), action) {
            ("pull_request", "opened" | "reopened") => ctx.pr_created(),
            ("pull_request", "review_requested") => ctx.pr_reviewer_added(),
            ("pull_request", "closed") => ctx.pr_closed(),
            // Pushes, edits, labels and the like change no sign-off.
            ("pull_request", _) => ignored("pr_changed"),
            ("pull_request_review", "submitted") => ctx.pr_review(),
            ("pull_request_review", "dismissed") => ctx.signoff_by(
                "pr_review_dismissed",
                "/review/user",
                SignoffStatus::Pending,
            ),
            ("pull_request_review", _) => ignored("pr_review_changed"),
            ("pull_request_review_comment", "created") => {
                ctx.pr_ticket().and_then(|t| ctx.comment_on(t))
            }
            // Edits and deletions of comments do not rewrite ticket history.
            ("pull_request_review_comment", _) => ignored("pr_comment_changed"),
            ("issue_comment", _) => ctx.issue_comment(action),
            ("status", _) => ctx.build_status(),
            ("check_run", _) => ctx.check_run(action),
            ("push", _) => ctx.push(),
            ("ping", _) => ignored("ping"),
            (other, _) => Err(unsupported(format!("github event `{other}` is not mapped"))),
        }
    }

    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        // GitHub is inbound only: nothing is sent back.
        Ok(Vec::new())
    }
}

struct Ctx<'a> {
    body: &'a Value,
    config: &'a Value,
    users: UserDirectory<'a>,
}

impl Ctx<'_> {
    fn activity(&self) -> &str {
        config_str(self.config, "activity", "Development")
    }

    fn ci_actor(&self) -> String {
        config_str(self.config, "ci_actor", "github-actions").to_owned()
    }

    fn repo(&self) -> Result<&str, MapError> {
        self.body.str_at("/repository/full_name")
    }

    fn pr_number(&self) -> Result<String, MapError> {
        self.body.id_at("/pull_request/number")
    }

    fn head_branch(&self) -> Result<&str, MapError> {
        self.body.str_at("/pull_request/head/ref")
    }

    /// The PR's ticket: by the PR's external id, then its head branch.
    fn pr_ticket(&self) -> Result<TicketRef, MapError> {
        Ok(ticket_ref(
            Some(format!("{}#{}", self.repo()?, self.pr_number()?)),
            Some(self.head_branch()?.to_owned()),
        ))
    }

    /// A sign-off for the configured activity.
    fn sign(
        &self,
        ticket: &TicketRef,
        role: RaciRole,
        email: String,
        status: SignoffStatus,
    ) -> Action {
        signoff(ticket, self.activity(), role, email, status)
    }

    /// E-mail of the GitHub user at `pointer` (an object with a `login`).
    fn email(&self, pointer: &str) -> Result<String, MapError> {
        let login = self.body.str_at(&format!("{pointer}/login"))?;
        login_email(&self.users, login)
    }

    fn pr_created(&self) -> MapResult {
        let branch = self.head_branch()?;
        let repo = self.repo()?;
        let number = self.pr_number()?;
        let url = self.body.str_at("/pull_request/html_url")?;
        let author = self.email("/pull_request/user")?;
        let mut actions = Vec::new();
        let ticket = if branch_ticket_guid(branch).is_some() {
            ticket_ref(None, Some(branch.to_owned()))
        } else {
            let title = self.body.str_at("/pull_request/title")?;
            let description = match self.body.opt_str("/pull_request/body")?.unwrap_or("") {
                "" => url.to_owned(),
                text => format!("{text}\n\n{url}"),
            };
            actions.push(Action::Create(CreateTicket {
                subject: title.to_owned(),
                description,
                priority: config_priority(self.config, "default_priority", Priority::Medium)?,
                ticket_type: config_str(self.config, "ticket_type", "FEATURE").to_owned(),
                requested_by: Some(author.clone()),
                external_id: Some(format!("{repo}#{number}")),
                labels: vec!["github".into()],
            }));
            created_by(0)
        };
        actions.push(Action::LinkPr(LinkPr {
            ticket: ticket.clone(),
            pr_id: number,
            repo: repo.to_owned(),
            url: Some(url.to_owned()),
        }));
        // Opening the PR is the author's sign-off on the work.
        actions.push(self.sign(
            &ticket,
            RaciRole::Responsible,
            author,
            SignoffStatus::Approved,
        ));
        for i in 0..self.body.list("/pull_request/requested_reviewers")?.len() {
            let email = self.email(&format!("/pull_request/requested_reviewers/{i}"))?;
            actions.push(self.sign(&ticket, RaciRole::Consulted, email, SignoffStatus::Pending));
        }
        mapped("pr_created", actions)
    }

    fn pr_reviewer_added(&self) -> MapResult {
        if self.body["requested_reviewer"].is_null() {
            // A team names no person to sign off.
            return ignored("pr_team_review_requested");
        }
        let status = SignoffStatus::Pending;
        self.signoff_by("pr_reviewer_added", "/requested_reviewer", status)
    }

    fn pr_closed(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        if self.body["pull_request"]["merged"] == true {
            let resolved_by = self.email("/pull_request/merged_by")?;
            let resolve = Action::Resolve(Resolve {
                ticket,
                resolved_by,
            });
            return mapped("pr_merged", vec![resolve]);
        }
        let by = self.email("/sender")?;
        let number = self.pr_number()?;
        let text = format!("Pull request #{number} was closed without merging.");
        mapped("pr_declined", vec![comment(&ticket, text, by, None)])
    }

    fn pr_review(&self) -> MapResult {
        match self.body.str_at("/review/state")? {
            "approved" => self.pr_approved(),
            "changes_requested" => self.signoff_by(
                "pr_changes_requested",
                "/review/user",
                SignoffStatus::Rejected,
            ),
            "commented" => {
                let text = self.body.opt_str("/review/body")?.unwrap_or("").trim();
                if text.is_empty() {
                    // Inline comments arrive as `pull_request_review_comment`s of their own.
                    return ignored("pr_review_without_body");
                }
                let ticket = self.pr_ticket()?;
                let by = self.email("/review/user")?;
                let id = self.body.id_at("/review/id")?;
                let action = comment(&ticket, text.to_owned(), by, Some(format!("review:{id}")));
                mapped("pr_review_comment", vec![action])
            }
            other => Err(mapper_kit::malformed(format!(
                "field `/review/state` has unknown value `{other}`"
            ))),
        }
    }

    fn pr_approved(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        let approver = self.body.str_at("/review/user/login")?;
        let email = login_email(&self.users, approver)?;
        let approved = SignoffStatus::Approved;
        let mut actions = vec![self.sign(&ticket, RaciRole::Consulted, email.clone(), approved)];
        // The approval that completes the set of reviewers also signs A.
        let still_requested = self
            .body
            .list("/pull_request/requested_reviewers")?
            .iter()
            .any(|r| r["login"].as_str() != Some(approver));
        // Whether it completes the set needs the reviews API; without an
        // answer the reviewer's own sign-off still stands, and a later
        // approval decides A.
        if !still_requested {
            match self.all_reviews_approved(approver) {
                Ok(true) => {
                    actions.push(self.sign(&ticket, RaciRole::Accountable, email, approved))
                }
                Ok(false) => {}
                Err(e) => log(
                    LogLevel::Warn,
                    &format!("A sign-off not decided: {}", e.message),
                ),
            }
        }
        mapped("pr_approved", actions)
    }

    /// Whether every reviewer's latest decisive review (not COMMENTED) is an
    /// approval, `approver` counting as approved, per the REST API.
    fn all_reviews_approved(&self, approver: &str) -> Result<bool, MapError> {
        let (repo, number) = (self.repo()?, self.pr_number()?);
        let path = format!("/repos/{repo}/pulls/{number}/reviews");
        let reviews = get_json(&path)?;
        let reviews = reviews
            .as_array()
            .ok_or_else(|| internal(format!("GET {path}: answer is not a list of reviews")))?;
        // Chronological: a later review of the same login overrides.
        let mut latest: Vec<(&str, &str)> = Vec::new();
        for review in reviews {
            let (Some(login), Some(state)) =
                (review["user"]["login"].as_str(), review["state"].as_str())
            else {
                continue;
            };
            if state == "COMMENTED" {
                continue;
            }
            latest.retain(|(l, _)| *l != login);
            latest.push((login, state));
        }
        Ok(latest
            .iter()
            .all(|(login, state)| *login == approver || *state == "APPROVED"))
    }

    /// A C sign-off in `status` for the user at `pointer`.
    fn signoff_by(&self, event_type: &str, pointer: &str, status: SignoffStatus) -> MapResult {
        let ticket = self.pr_ticket()?;
        let email = self.email(pointer)?;
        mapped(
            event_type,
            vec![self.sign(&ticket, RaciRole::Consulted, email, status)],
        )
    }

    /// `comment` becomes a ticket comment on `ticket`.
    fn comment_on(&self, ticket: TicketRef) -> MapResult {
        let text = self.body.str_at("/comment/body")?.to_owned();
        let by = self.email("/comment/user")?;
        let id = self.body.id_at("/comment/id")?;
        mapped(
            "pr_comment",
            vec![comment(&ticket, text, by, Some(format!("comment:{id}")))],
        )
    }

    /// A comment on a PR's conversation tab. The payload names no branch, so
    /// the PR is read for its head branch.
    fn issue_comment(&self, action: &str) -> MapResult {
        if self.body["issue"]["pull_request"].is_null() {
            return ignored("issue_comment");
        }
        if action != "created" {
            return ignored("pr_comment_changed");
        }
        let repo = self.repo()?;
        let number = self.body.id_at("/issue/number")?;
        let path = format!("/repos/{repo}/pulls/{number}");
        let pr = get_json(&path)?;
        let branch = pr["head"]["ref"]
            .as_str()
            .ok_or_else(|| internal(format!("GET {path}: answer has no `head.ref`")))?;
        self.comment_on(ticket_ref(
            Some(format!("{repo}#{number}")),
            Some(branch.to_owned()),
        ))
    }

    fn build_status(&self) -> MapResult {
        let state = self.body.str_at("/state")?;
        let Some(branch) = self.body.opt_str("/branches/0/name")? else {
            // A status on a commit no branch points at names no ticket.
            return ignored("pipeline_without_branch");
        };
        let context = self.body.opt_str("/context")?.unwrap_or("default");
        let url = self.body.opt_str("/target_url")?.unwrap_or("");
        // The commit's author pushed it (a status names no pusher).
        let by = || self.pusher(&["/commit/author"], Some("/commit/commit/author/email"));
        match state {
            "success" => self.build_passed(branch, format!("Build {context} passed: {url}"), by()),
            "failure" | "error" => {
                self.build_failed(branch, format!("Build {context} failed: {url}"), by())
            }
            // A running build says nothing about the work yet.
            "pending" => ignored("pipeline_pending"),
            other => Err(mapper_kit::malformed(format!(
                "field `/state` has unknown value `{other}`"
            ))),
        }
    }

    fn check_run(&self, action: &str) -> MapResult {
        if action != "completed" {
            return ignored("pipeline_pending");
        }
        let Some(branch) = self.body.opt_str("/check_run/check_suite/head_branch")? else {
            return ignored("pipeline_without_branch");
        };
        let name = self.body.str_at("/check_run/name")?;
        let url = self.body.opt_str("/check_run/html_url")?.unwrap_or("");
        // A check run's sender is whoever triggered it (the pusher, for a
        // workflow run on push), unless it is the app itself.
        let by = || self.pusher(&["/sender"], None);
        match self.body.str_at("/check_run/conclusion")? {
            "success" => self.build_passed(branch, format!("Check {name} passed: {url}"), by()),
            "failure" | "timed_out" => {
                self.build_failed(branch, format!("Check {name} failed: {url}"), by())
            }
            // Neutral, cancelled, skipped, stale or waiting on a person.
            _ => ignored("pipeline_inconclusive"),
        }
    }

    fn build_passed(&self, branch: &str, text: String, by: String) -> MapResult {
        let ticket = ticket_ref(None, Some(branch.to_owned()));
        mapped("pipeline_success", vec![comment(&ticket, text, by, None)])
    }

    fn build_failed(&self, branch: &str, reason: String, by: String) -> MapResult {
        mapped(
            "pipeline_failed",
            vec![Action::Escalate(Escalate {
                ticket: ticket_ref(None, Some(branch.to_owned())),
                escalated_by: by,
                reason: Some(reason),
            })],
        )
    }

    /// Who a build speaks for: the first of `logins` (pointers to a user
    /// object) the directory knows, else the commit's own e-mail at
    /// `email`, else `ci_actor` — a build's result is worth recording even
    /// for a pusher nobody listed.
    fn pusher(&self, logins: &[&str], email: Option<&str>) -> String {
        logins
            .iter()
            .filter(|p| {
                self.body
                    .pointer(&format!("{p}/type"))
                    .and_then(Value::as_str)
                    != Some("Bot")
            })
            .filter_map(|p| {
                self.body
                    .pointer(&format!("{p}/login"))
                    .and_then(Value::as_str)
            })
            .find_map(|login| login_email(&self.users, login).ok())
            .or_else(|| {
                email
                    .and_then(|p| self.body.pointer(p))
                    .and_then(Value::as_str)
                    .filter(|e| e.contains('@') && !e.ends_with("@users.noreply.github.com"))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| self.ci_actor())
    }

    fn push(&self) -> MapResult {
        let git_ref = self.body.str_at("/ref")?;
        let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
            // Tags (the only other refs GitHub reports) name no ticket.
            return ignored("push_tag");
        };
        if self.body["deleted"] == true {
            return ignored("push_without_commits");
        }
        let ticket = ticket_ref(None, Some(branch.to_owned()));
        let mut actions = Vec::new();
        for (i, commit) in self.body.list("/commits")?.iter().enumerate() {
            let id = commit.str_at("/id")?;
            let message = commit.str_at("/message")?.trim();
            let author = match commit.opt_str("/author/email")?.filter(|e| e.contains('@')) {
                Some(e) => e.to_owned(),
                None => {
                    let login = commit.opt_str("/author/username")?.ok_or_else(|| {
                        mapper_kit::malformed(format!(
                            "missing field `/commits/{i}/author/email` (with an e-mail) or `author/username`"
                        ))
                    })?;
                    login_email(&self.users, login)?
                }
            };
            let short = id.get(..12).unwrap_or(id);
            actions.push(comment(
                &ticket,
                format!("Commit {short} pushed to {branch}: {message}"),
                author,
                Some(format!("commit:{id}")),
            ));
        }
        if actions.is_empty() {
            return ignored("push_without_commits");
        }
        mapped("commit_pushed", actions)
    }
}

fn login_email(users: &UserDirectory<'_>, login: &str) -> Result<String, MapError> {
    users.email(&[login], &format!("`{login}`"))
}

/// GETs `path` from the REST API; any failure or non-2xx answer is internal.
fn get_json(path: &str) -> Result<Value, MapError> {
    let response = provider_api(&ApiRequest {
        method: "GET".into(),
        path: path.to_owned(),
        headers: vec![Header {
            name: "accept".into(),
            value: "application/vnd.github+json".into(),
        }],
        body: Vec::new(),
    })
    .map_err(|e| internal(format!("GET {path} failed: {}", api_error(&e))))?;
    if !(200..300).contains(&response.status) {
        return Err(internal(format!(
            "GET {path} answered status {}",
            response.status
        )));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| internal(format!("GET {path}: answer is not JSON: {e}")))
}

fn api_error(e: &ApiError) -> String {
    match e {
        ApiError::Denied(why) => format!("denied: {why}"),
        ApiError::BudgetExhausted => "call budget exhausted".into(),
        ApiError::Timeout => "timed out".into(),
        ApiError::TooLarge => "response too large".into(),
        ApiError::Unavailable(why) => format!("unavailable: {why}"),
    }
}
