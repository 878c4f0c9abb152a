//! Bitbucket Cloud mapping rules.
//!
//! Event key in `X-Event-Key`; no payload carries an e-mail, so users are
//! looked up in `mapper_config.user_directory` by nickname, account id or
//! uuid (commit authors carry one in `author.raw`). Pull-request events refer
//! to their ticket by the PR's external id (`workspace/repo#id`) and its
//! source branch, so both a ticket branch and a ticket this mapper created
//! for the PR resolve. The body is decoded into the typed [`payload`] types,
//! which skip the bulk of a delivery (links, avatars, repository objects)
//! without building it.
//!
//! Config keys: `user_directory` (required for PR events), `activity`
//! (default `Development`), `ticket_type` (default `FEATURE`),
//! `default_priority` (default `MEDIUM`), `ci_actor` (default
//! `bitbucket-pipelines`: who a build's comment or escalation is by when
//! the pusher is not in the directory).

mod payload;

use mapper_kit::{
    Action, CreateTicket, Delivery, Escalate, Guest, LinkPr, MapError, MapResult, OutboundRequest,
    Priority, RaciRole, Resolve, SignoffStatus, TicketChange, TicketRef, UserDirectory,
    branch_ticket_guid, comment, config_priority, config_str, created_by, email_in_author, header,
    ignored, malformed, mapped, parse_config, signoff, ticket_ref, typed_body, unsupported,
};
use payload::{Account, Payload, PullRequest, required};
use serde_json::Value;

struct Bitbucket;

mapper_kit::bindings::export!(Bitbucket with_types_in mapper_kit::bindings);

impl Guest for Bitbucket {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        let event = header(&delivery, "x-event-key")
            .ok_or_else(|| malformed("missing header `x-event-key`"))?
            .to_owned();
        let body: Payload = typed_body(&delivery)?;
        let ctx = Ctx {
            body: &body,
            config: &config,
            users: UserDirectory::from_config(&config, "bitbucket")?,
        };
        match event.as_str() {
            "pullrequest:created" => ctx.pr_created(),
            "pullrequest:updated" => ctx.pr_reviewer_added(),
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
    body: &'a Payload,
    config: &'a Value,
    users: UserDirectory<'a>,
}

impl Ctx<'_> {
    fn activity(&self) -> &str {
        config_str(self.config, "activity", "Development")
    }

    fn pr(&self) -> Result<&PullRequest, MapError> {
        required(&self.body.pullrequest, "pullrequest")
    }

    fn repo(&self) -> Result<&str, MapError> {
        Ok(&required(&self.body.repository, "repository")?.full_name)
    }

    /// The PR's ticket: by the PR's external id, then its source branch.
    fn pr_ticket(&self) -> Result<TicketRef, MapError> {
        let pr = self.pr()?;
        Ok(ticket_ref(
            Some(format!("{}#{}", self.repo()?, pr.id)),
            Some(pr.source.branch.name.clone()),
        ))
    }

    fn email(&self, account: &Account) -> Result<String, MapError> {
        account.email(&self.users)
    }

    fn pr_created(&self) -> MapResult {
        let pr = self.pr()?;
        let branch = &pr.source.branch.name;
        let repo = self.repo()?;
        let url = pr.html_url();
        let author = self.email(required(&pr.author, "pullrequest.author")?)?;
        let mut actions = Vec::new();
        let ticket = if branch_ticket_guid(branch).is_some() {
            ticket_ref(None, Some(branch.clone()))
        } else {
            let mut description = pr.description.clone().unwrap_or_default();
            if let Some(u) = url {
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(u);
            }
            actions.push(Action::Create(CreateTicket {
                subject: pr.title.clone(),
                description,
                priority: config_priority(self.config, "default_priority", Priority::Medium)?,
                ticket_type: config_str(self.config, "ticket_type", "FEATURE").to_owned(),
                requested_by: Some(author.clone()),
                external_id: Some(format!("{repo}#{}", pr.id)),
                labels: vec!["bitbucket".into()],
            }));
            created_by(0)
        };
        actions.push(Action::LinkPr(LinkPr {
            ticket: ticket.clone(),
            pr_id: pr.id.to_string(),
            repo: repo.to_owned(),
            url: url.map(str::to_owned),
        }));
        // Opening the PR is the author's sign-off on the work.
        actions.push(signoff(
            &ticket,
            self.activity(),
            RaciRole::Responsible,
            author,
            SignoffStatus::Approved,
        ));
        actions.extend(self.reviewer_signoffs(&ticket)?);
        mapped("pr_created", actions)
    }

    /// Bitbucket has no "reviewer added" event: each updated PR carries its
    /// reviewers, and their current state is re-stated (an unchanged
    /// sign-off changes nothing in the host), which records the new ones.
    fn pr_reviewer_added(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        mapped("pr_reviewer_added", self.reviewer_signoffs(&ticket)?)
    }

    fn reviewer_signoffs(&self, ticket: &TicketRef) -> Result<Vec<Action>, MapError> {
        let pr = self.pr()?;
        pr.reviewers
            .iter()
            .map(|reviewer| {
                let state = pr
                    .participants
                    .iter()
                    .find(|p| p.user.same(reviewer))
                    .map(|p| p.status())
                    .unwrap_or(SignoffStatus::Pending);
                let email = self.email(reviewer)?;
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
        let pr = self.pr()?;
        let approver = &required(&self.body.approval, "approval")?.user;
        let email = self.email(approver)?;
        let activity = self.activity();
        let mut actions = vec![signoff(
            &ticket,
            activity,
            RaciRole::Consulted,
            email.clone(),
            SignoffStatus::Approved,
        )];
        // The approval that completes the set of reviewers also signs A.
        let complete = pr.reviewers.iter().all(|r| {
            r.same(approver) || pr.participants.iter().any(|p| p.user.same(r) && p.approved)
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
        let actor = self
            .body
            .approval
            .as_ref()
            .or(self.body.changes_request.as_ref())
            .map(|a| &a.user)
            .or(self.body.actor.as_ref())
            .ok_or_else(|| malformed("missing body field `approval.user` or `actor`"))?;
        let email = self.email(actor)?;
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
        let merger = self
            .pr()?
            .closed_by
            .as_ref()
            .or(self.body.actor.as_ref())
            .ok_or_else(|| malformed("missing body field `pullrequest.closed_by` or `actor`"))?;
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
        let pr = self.pr()?;
        let by = self.email(required(&self.body.actor, "actor")?)?;
        let reason = pr.reason.as_deref().unwrap_or("").trim();
        let text = if reason.is_empty() {
            format!("Pull request #{} was declined.", pr.id)
        } else {
            format!("Pull request #{} was declined: {reason}", pr.id)
        };
        mapped("pr_declined", vec![comment(&ticket, text, by, None)])
    }

    fn pr_comment(&self) -> MapResult {
        let ticket = self.pr_ticket()?;
        let c = required(&self.body.comment, "comment")?;
        let by = self.email(&c.user)?;
        mapped(
            "pr_comment",
            vec![comment(
                &ticket,
                c.content.raw.clone(),
                by,
                Some(format!("comment:{}", c.id)),
            )],
        )
    }

    fn build_status(&self) -> MapResult {
        let status = required(&self.body.commit_status, "commit_status")?;
        let Some(branch) = &status.refname else {
            // A status on a bare commit names no branch, so no ticket.
            return ignored("pipeline_without_branch");
        };
        let ticket = ticket_ref(None, Some(branch.clone()));
        let name = status.name.as_deref().unwrap_or("build");
        let url = status.url.as_deref().unwrap_or("");
        let actor = self.pusher();
        match status.state.as_str() {
            "SUCCESSFUL" => mapped(
                "pipeline_success",
                vec![comment(
                    &ticket,
                    format!("Build {name} passed: {url}"),
                    actor,
                    None,
                )],
            ),
            "FAILED" => mapped(
                "pipeline_failed",
                vec![Action::Escalate(Escalate {
                    ticket,
                    escalated_by: actor,
                    reason: Some(format!("Build {name} failed: {url}")),
                })],
            ),
            // Running and stopped builds say nothing about the work yet.
            "INPROGRESS" | "STOPPED" => ignored("pipeline_pending"),
            other => Err(malformed(format!(
                "body field `commit_status.state` has unknown value `{other}`"
            ))),
        }
    }

    /// Who a build speaks for: the person who pushed the commit (the
    /// status event's `actor`, which Pipelines sets to whoever triggered
    /// the run) when the directory knows them; otherwise `ci_actor`, since
    /// a build's result is worth recording even for an unknown pusher.
    fn pusher(&self) -> String {
        self.body
            .actor
            .as_ref()
            .and_then(|a| self.email(a).ok())
            .unwrap_or_else(|| {
                config_str(self.config, "ci_actor", "bitbucket-pipelines").to_owned()
            })
    }

    fn push(&self) -> MapResult {
        let push = required(&self.body.push, "push")?;
        let mut actions = Vec::new();
        for (i, change) in push.changes.iter().enumerate() {
            // Deleted branches and tags carry no work to record.
            let Some(new) = change.new.as_ref().filter(|n| n.kind == "branch") else {
                continue;
            };
            let branch = &new.name;
            let ticket = ticket_ref(None, Some(branch.clone()));
            for (j, commit) in change.commits.iter().enumerate() {
                let raw_email = commit.author.raw.as_deref().and_then(email_in_author);
                let author = match (raw_email, &commit.author.user) {
                    (Some(e), _) => e.to_owned(),
                    (None, Some(user)) => self.email(user)?,
                    (None, None) => {
                        return Err(malformed(format!(
                            "body field `push.changes[{i}].commits[{j}].author` has neither an e-mail in `raw` nor a `user`"
                        )));
                    }
                };
                let hash = &commit.hash;
                let short = hash.get(..12).unwrap_or(hash);
                actions.push(comment(
                    &ticket,
                    format!(
                        "Commit {short} pushed to {branch}: {}",
                        commit.message.trim()
                    ),
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
