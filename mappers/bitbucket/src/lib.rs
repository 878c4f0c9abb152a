//! Bitbucket Cloud mapping rules.
//!
//! Event key in `X-Event-Key`; no payload carries an e-mail, so users are
//! looked up in `mapper_config.user_directory` by nickname, account id or
//! uuid (commit authors carry one in `author.raw`). Pull-request events refer
//! to their ticket by the PR's external id (`workspace/repo#id`) and its
//! source branch, so both a ticket branch and a ticket this mapper created
//! for the PR resolve.
//!
//! Config keys: `user_directory` (required for PR events), `activity`
//! (default `Development`), `ticket_type` (default `FEATURE`),
//! `default_priority` (default `MEDIUM`), `ci_actor` (default
//! `bitbucket-pipelines`).

use mapper_kit::{
    Action, CreateTicket, Delivery, Escalate, Fields, Guest, LinkPr, MapError, MapResult,
    OutboundRequest, Priority, RaciRole, Resolve, SignoffStatus, TicketChange, TicketRef,
    UserDirectory, branch_ticket_guid, comment, config_priority, config_str, created_by,
    email_in_author, header, ignored, json_body, mapped, parse_config, signoff, ticket_ref,
    unsupported,
};
use serde_json::Value;

struct Bitbucket;

mapper_kit::bindings::export!(Bitbucket with_types_in mapper_kit::bindings);

impl Guest for Bitbucket {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        let event = header(&delivery, "x-event-key")
            .ok_or_else(|| mapper_kit::malformed("missing header `x-event-key`"))?
            .to_owned();
        let body = json_body(&delivery)?;
        let ctx = Ctx {
            body: &body,
            config: &config,
            users: UserDirectory::from_config(&config, "bitbucket")?,
        };
        match event.as_str() {
            "pullrequest:created" => ctx.pr_created(),
            "pullrequest:updated" => ctx.pr_updated(),
            "pullrequest:approved" => ctx.pr_approved(),
            "pullrequest:unapproved" => ctx.reviewer_state("pr_unapproved", SignoffStatus::Pending),
            "pullrequest:changes_request_created" => {
                ctx.reviewer_state("pr_changes_requested", SignoffStatus::Rejected)
            }
            "pullrequest:changes_request_removed" => {
                ctx.reviewer_state("pr_changes_request_removed", SignoffStatus::Pending)
            }
            "pullrequest:fulfilled" => ctx.pr_merged(),
            "pullrequest:rejected" => ctx.pr_declined(),
            "pullrequest:comment_created" => ctx.pr_comment(),
            // Edits and deletions of comments do not rewrite ticket history.
            "pullrequest:comment_updated" | "pullrequest:comment_deleted" => {
                ignored("pr_comment_changed")
            }
            "repo:commit_status_created" | "repo:commit_status_updated" => ctx.build_status(),
            "repo:push" => ctx.push(),
            other => Err(unsupported(format!(
                "bitbucket event `{other}` is not mapped"
            ))),
        }
    }

    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        // Bitbucket is inbound only: nothing is sent back.
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

    fn repo(&self) -> Result<&str, MapError> {
        self.body.str_at("/repository/full_name")
    }

    fn pr_id(&self) -> Result<String, MapError> {
        self.body.id_at("/pullrequest/id")
    }

    fn source_branch(&self) -> Result<&str, MapError> {
        self.body.str_at("/pullrequest/source/branch/name")
    }

    /// The PR's ticket: by the PR's external id, then its source branch.
    fn pr_ticket(&self) -> Result<TicketRef, MapError> {
        Ok(ticket_ref(
            Some(format!("{}#{}", self.repo()?, self.pr_id()?)),
            Some(self.source_branch()?.to_owned()),
        ))
    }

    /// E-mail of the Bitbucket account at `pointer`.
    fn email(&self, pointer: &str) -> Result<String, MapError> {
        let user = self.body.req(pointer)?;
        account_email(&self.users, user)
    }

    fn pr_created(&self) -> MapResult {
        let branch = self.source_branch()?;
        let repo = self.repo()?;
        let pr_id = self.pr_id()?;
        let url = self.body.opt_str("/pullrequest/links/html/href")?;
        let author = self.email("/pullrequest/author")?;
        let mut actions = Vec::new();
        let ticket = if branch_ticket_guid(branch).is_some() {
            ticket_ref(None, Some(branch.to_owned()))
        } else {
            let title = self.body.str_at("/pullrequest/title")?;
            let mut description = self
                .body
                .opt_str("/pullrequest/description")?
                .unwrap_or("")
                .to_owned();
            if let Some(u) = url {
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(u);
            }
            actions.push(Action::Create(CreateTicket {
                subject: title.to_owned(),
                description,
                priority: config_priority(self.config, "default_priority", Priority::Medium)?,
                ticket_type: config_str(self.config, "ticket_type", "FEATURE").to_owned(),
                requested_by: Some(author.clone()),
                external_id: Some(format!("{repo}#{pr_id}")),
                labels: vec!["bitbucket".into()],
            }));
            created_by(0)
        };
        actions.push(Action::LinkPr(LinkPr {
            ticket: ticket.clone(),
            pr_id,
            repo: repo.to_owned(),
            url: url.map(str::to_owned),
        }));
        let activity = self.activity();
        // Opening the PR is the author's sign-off on the work.
        actions.push(signoff(
            &ticket,
            activity,
            RaciRole::Responsible,
            author,
            SignoffStatus::Approved,
        ));
        actions.extend(self.reviewer_signoffs(&ticket)?);
        mapped("pr_created", actions)
    }

    /// Bitbucket has no "reviewer added" event: each created or updated PR
    /// carries its reviewers, and their current state is re-stated (an
    /// unchanged sign-off changes nothing in the host).
    fn pr_updated(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        mapped("pr_updated", self.reviewer_signoffs(&ticket)?)
    }

    fn reviewer_signoffs(&self, ticket: &TicketRef) -> Result<Vec<Action>, MapError> {
        let participants = self.body.list("/pullrequest/participants")?;
        self.body
            .list("/pullrequest/reviewers")?
            .iter()
            .map(|reviewer| {
                let state = participants
                    .iter()
                    .find(|p| same_account(&p["user"], reviewer))
                    .map(participant_state)
                    .unwrap_or(SignoffStatus::Pending);
                let email = account_email(&self.users, reviewer)?;
                Ok(signoff(
                    ticket,
                    self.activity(),
                    RaciRole::Consulted,
                    email,
                    state,
                ))
            })
            .collect()
    }

    fn pr_approved(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        let approver = self.body.req("/approval/user")?;
        let email = account_email(&self.users, approver)?;
        let activity = self.activity();
        let mut actions = vec![signoff(
            &ticket,
            activity,
            RaciRole::Consulted,
            email.clone(),
            SignoffStatus::Approved,
        )];
        // The approval that completes the set of reviewers also signs A.
        let participants = self.body.list("/pullrequest/participants")?;
        let complete = self.body.list("/pullrequest/reviewers")?.iter().all(|r| {
            same_account(r, approver)
                || participants
                    .iter()
                    .any(|p| same_account(&p["user"], r) && p["approved"] == Value::Bool(true))
        });
        if complete {
            actions.push(signoff(
                &ticket,
                activity,
                RaciRole::Accountable,
                email,
                SignoffStatus::Approved,
            ));
        }
        mapped("pr_approved", actions)
    }

    /// The actor's reviewer sign-off moves to `status`.
    fn reviewer_state(&self, event_type: &str, status: SignoffStatus) -> MapResult {
        let ticket = self.pr_ticket()?;
        let pointer = ["/approval/user", "/changes_request/user", "/actor"]
            .into_iter()
            .find(|p| self.body.pointer(p).is_some_and(|v| !v.is_null()))
            .unwrap_or("/actor");
        let email = self.email(pointer)?;
        mapped(
            event_type,
            vec![signoff(
                &ticket,
                self.activity(),
                RaciRole::Consulted,
                email,
                status,
            )],
        )
    }

    fn pr_merged(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        let merger = if self
            .body
            .pointer("/pullrequest/closed_by")
            .is_some_and(|v| !v.is_null())
        {
            "/pullrequest/closed_by"
        } else {
            "/actor"
        };
        let resolved_by = self.email(merger)?;
        mapped(
            "pr_merged",
            vec![Action::Resolve(Resolve {
                ticket,
                resolved_by,
            })],
        )
    }

    fn pr_declined(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        let by = self.email("/actor")?;
        let reason = self
            .body
            .opt_str("/pullrequest/reason")?
            .unwrap_or("")
            .trim();
        let text = if reason.is_empty() {
            format!("Pull request #{} was declined.", self.pr_id()?)
        } else {
            format!("Pull request #{} was declined: {reason}", self.pr_id()?)
        };
        mapped("pr_declined", vec![comment(&ticket, text, by, None)])
    }

    fn pr_comment(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        let text = self.body.str_at("/comment/content/raw")?.to_owned();
        let by = self.email("/comment/user")?;
        let id = self.body.id_at("/comment/id")?;
        mapped(
            "pr_comment",
            vec![comment(&ticket, text, by, Some(format!("comment:{id}")))],
        )
    }

    fn build_status(&self) -> MapResult {
        let state = self.body.str_at("/commit_status/state")?;
        let Some(branch) = self.body.opt_str("/commit_status/refname")? else {
            // A status on a bare commit names no branch, so no ticket.
            return ignored("build_status_without_branch");
        };
        let ticket = ticket_ref(None, Some(branch.to_owned()));
        let name = self.body.opt_str("/commit_status/name")?.unwrap_or("build");
        let url = self.body.opt_str("/commit_status/url")?.unwrap_or("");
        let actor = config_str(self.config, "ci_actor", "bitbucket-pipelines").to_owned();
        match state {
            "SUCCESSFUL" => mapped(
                "build_succeeded",
                vec![comment(
                    &ticket,
                    format!("Build {name} passed: {url}"),
                    actor,
                    None,
                )],
            ),
            "FAILED" => mapped(
                "build_failed",
                vec![Action::Escalate(Escalate {
                    ticket,
                    escalated_by: actor,
                    reason: Some(format!("Build {name} failed: {url}")),
                })],
            ),
            // Running and stopped builds say nothing about the work yet.
            "INPROGRESS" | "STOPPED" => ignored("build_pending"),
            other => Err(mapper_kit::malformed(format!(
                "field `/commit_status/state` has unknown value `{other}`"
            ))),
        }
    }

    fn push(&self) -> MapResult {
        let mut actions = Vec::new();
        for (i, change) in self.body.list("/push/changes")?.iter().enumerate() {
            // Deleted branches and tags carry no work to record.
            if change.opt_str("/new/type")? != Some("branch") {
                continue;
            }
            let branch = change.str_at("/new/name")?;
            let ticket = ticket_ref(None, Some(branch.to_owned()));
            for (j, commit) in change.list("/commits")?.iter().enumerate() {
                let hash = commit.str_at("/hash")?;
                let message = commit.str_at("/message")?.trim().to_owned();
                let author = match commit.opt_str("/author/raw")?.and_then(email_in_author) {
                    Some(e) => e.to_owned(),
                    None => {
                        let user = commit.pointer("/author/user").ok_or_else(|| {
                            mapper_kit::malformed(format!(
                                "missing field `/push/changes/{i}/commits/{j}/author/raw` (with an e-mail) or `author/user`"
                            ))
                        })?;
                        account_email(&self.users, user)?
                    }
                };
                let short = hash.get(..12).unwrap_or(hash);
                actions.push(comment(
                    &ticket,
                    format!("Commit {short} pushed to {branch}: {message}"),
                    author,
                    Some(format!("commit:{hash}")),
                ));
            }
        }
        if actions.is_empty() {
            return ignored("push_without_commits");
        }
        mapped("commit_pushed", actions)
    }
}

fn participant_state(p: &Value) -> SignoffStatus {
    match (p["approved"].as_bool(), p["state"].as_str()) {
        (Some(true), _) | (_, Some("approved")) => SignoffStatus::Approved,
        (_, Some("changes_requested")) => SignoffStatus::Rejected,
        _ => SignoffStatus::Pending,
    }
}

/// Two account objects are the same user when a stable id matches.
fn same_account(a: &Value, b: &Value) -> bool {
    ["uuid", "account_id"]
        .iter()
        .any(|k| a[*k].as_str().is_some_and(|x| Some(x) == b[*k].as_str()))
}

fn account_email(users: &UserDirectory<'_>, account: &Value) -> Result<String, MapError> {
    let key = |k: &str| account[k].as_str().unwrap_or("");
    let who = match key("display_name") {
        "" => format!("`{}`", key("nickname")),
        name => format!("`{name}`"),
    };
    users.email(&[key("nickname"), key("account_id"), key("uuid")], &who)
}
