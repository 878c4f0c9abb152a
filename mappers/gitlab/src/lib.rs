//! GitLab mapping rules.
//!
//! The hook in `X-Gitlab-Event` (`Merge Request Hook`, `Note Hook`,
//! `Pipeline Hook`, `Push Hook`, …; the body's `object_kind` when the
//! header is missing), a merge request's event in
//! `object_attributes.action`. E-mails are `[REDACTED]` in payloads unless
//! public, so users are found in the people directory (identity `gitlab`:
//! username, then numeric id), then `mapper_config.user_directory`, then a
//! real e-mail the payload carries. Merge-request events refer to their
//! ticket by the MR's external id (`group/project#iid`) and its source
//! branch, so both a ticket branch and a ticket this mapper created for
//! the MR resolve. GitLab says itself when an MR is approved by all
//! required approvers (action `approved`): that approval also signs A.
//!
//! Config keys: `user_directory`, `activity` (default `Development`),
//! `ticket_type` (default `FEATURE`), `default_priority` (default
//! `MEDIUM`), `ci_actor` (default `gitlab-ci`: who a pipeline's comment or
//! escalation is by when the pusher is unknown).

use mapper_kit::{
    Action, CreateTicket, Delivery, Escalate, Fields, Guest, LinkPr, MapError, MapResult,
    OutboundRequest, Priority, RaciRole, Resolve, SignoffStatus, TicketChange, TicketRef,
    UserDirectory, branch_ticket_guid, comment, config_priority, config_str, created_by, header,
    ignored, json_body, malformed, mapped, parse_config, signoff, ticket_ref, unsupported,
};
use serde_json::Value;

struct Gitlab;

mapper_kit::bindings::export!(Gitlab with_types_in mapper_kit::bindings);

impl Guest for Gitlab {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        let body = json_body(&delivery)?;
        let hook = match header(&delivery, "x-gitlab-event") {
            Some(h) => h.to_owned(),
            None => match body.opt_str("/object_kind")? {
                Some(kind) => kind_hook(kind).to_owned(),
                None => {
                    return Err(malformed(
                        "missing header `x-gitlab-event` and body field `object_kind`",
                    ));
                }
            },
        };
        let ctx = Ctx {
            body: &body,
            config: &config,
            users: UserDirectory::from_config(&config, "gitlab")?,
        };
        match hook.as_str() {
            "Merge Request Hook" => ctx.merge_request(),
            "Note Hook" => ctx.note(),
            "Pipeline Hook" => ctx.pipeline(),
            "Push Hook" => ctx.push(),
            // Tags name no ticket; the rest are not ticket facts.
            "Tag Push Hook" => ignored("tag_pushed"),
            "Job Hook"
            | "Deployment Hook"
            | "Release Hook"
            | "Wiki Page Hook"
            | "Issue Hook"
            | "Confidential Issue Hook"
            | "Confidential Note Hook"
            | "Emoji Hook"
            | "Feature Flag Hook"
            | "Resource Access Token Hook"
            | "Member Hook"
            | "Subgroup Hook"
            | "Project Hook" => ignored("not_mapped"),
            other => Err(unsupported(format!("gitlab hook `{other}` is not mapped"))),
        }
    }

    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        // GitLab is inbound only: nothing is sent back.
        Ok(Vec::new())
    }
}

/// `object_kind` → the hook name GitLab puts in `X-Gitlab-Event`.
fn kind_hook(kind: &str) -> &str {
    match kind {
        "merge_request" => "Merge Request Hook",
        "note" => "Note Hook",
        "pipeline" => "Pipeline Hook",
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        other => other,
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

    fn sign(&self, ticket: &TicketRef, role: RaciRole, email: String, s: SignoffStatus) -> Action {
        signoff(ticket, self.activity(), role, email, s)
    }

    fn repo(&self) -> Result<&str, MapError> {
        self.body.str_at("/project/path_with_namespace")
    }

    /// The e-mail of the GitLab user object `user` (username, id, e-mail).
    fn email_of(&self, user: &Value) -> Result<String, MapError> {
        let username = user.opt_str("/username")?.unwrap_or("");
        let id = match user.pointer("/id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        match self.users.email(&[username, &id], &format!("`{username}`")) {
            Ok(email) => Ok(email),
            // A public e-mail in the payload is the user's own word.
            Err(e) => match user.opt_str("/email")?.filter(|m| real_email(m)) {
                Some(m) => Ok(m.to_owned()),
                None => Err(e),
            },
        }
    }

    /// The e-mail of the user at `pointer`.
    fn email(&self, pointer: &str) -> Result<String, MapError> {
        self.email_of(self.body.req(pointer)?)
    }

    /// The MR's ticket, from `mr` (an MR's attributes): by the MR's
    /// external id, then its source branch.
    fn mr_ticket(&self, mr: &str) -> Result<TicketRef, MapError> {
        let iid = self.body.id_at(&format!("{mr}/iid"))?;
        let branch = self.body.str_at(&format!("{mr}/source_branch"))?;
        Ok(ticket_ref(
            Some(format!("{}#{iid}", self.repo()?)),
            Some(branch.to_owned()),
        ))
    }

    fn merge_request(&self) -> MapResult {
        let action = self
            .body
            .opt_str("/object_attributes/action")?
            .unwrap_or("");
        match action {
            "open" | "reopen" => self.mr_opened(),
            "update" => self.mr_updated(),
            "approval" => self.reviewer("pr_approved", SignoffStatus::Approved, false),
            "approved" => self.reviewer("pr_all_approved", SignoffStatus::Approved, true),
            "unapproval" | "unapproved" => {
                self.reviewer("pr_unapproved", SignoffStatus::Pending, false)
            }
            "merge" => {
                let ticket = self.mr_ticket("/object_attributes")?;
                let resolved_by = self.email("/user")?;
                mapped(
                    "pr_merged",
                    vec![Action::Resolve(Resolve {
                        ticket,
                        resolved_by,
                    })],
                )
            }
            "close" => {
                let ticket = self.mr_ticket("/object_attributes")?;
                let by = self.email("/user")?;
                let iid = self.body.id_at("/object_attributes/iid")?;
                let text = format!("Merge request !{iid} was closed without merging.");
                mapped("pr_declined", vec![comment(&ticket, text, by, None)])
            }
            other => Err(malformed(format!(
                "field `/object_attributes/action` has unknown value `{other}`"
            ))),
        }
    }

    fn mr_opened(&self) -> MapResult {
        let mr = "/object_attributes";
        let branch = self.body.str_at("/object_attributes/source_branch")?;
        let repo = self.repo()?;
        let iid = self.body.id_at("/object_attributes/iid")?;
        let url = self.body.opt_str("/object_attributes/url")?;
        let author = self.email("/user")?;
        let mut actions = Vec::new();
        let ticket = if branch_ticket_guid(branch).is_some() {
            ticket_ref(None, Some(branch.to_owned()))
        } else {
            let title = self.body.str_at(&format!("{mr}/title"))?;
            let text = self
                .body
                .opt_str(&format!("{mr}/description"))?
                .unwrap_or("");
            let description = match (text.trim(), url) {
                ("", Some(u)) => u.to_owned(),
                (t, Some(u)) => format!("{t}\n\n{u}"),
                (t, None) => t.to_owned(),
            };
            actions.push(Action::Create(CreateTicket {
                subject: title.to_owned(),
                description,
                priority: config_priority(self.config, "default_priority", Priority::Medium)?,
                ticket_type: config_str(self.config, "ticket_type", "FEATURE").to_owned(),
                requested_by: Some(author.clone()),
                external_id: Some(format!("{repo}#{iid}")),
                labels: vec!["gitlab".into()],
            }));
            created_by(0)
        };
        actions.push(Action::LinkPr(LinkPr {
            ticket: ticket.clone(),
            pr_id: iid,
            repo: repo.to_owned(),
            url: url.map(str::to_owned),
        }));
        // Opening the MR is the author's sign-off on the work.
        actions.push(self.sign(
            &ticket,
            RaciRole::Responsible,
            author,
            SignoffStatus::Approved,
        ));
        for reviewer in self.body.list("/reviewers")? {
            let email = self.email_of(reviewer)?;
            actions.push(self.sign(&ticket, RaciRole::Consulted, email, SignoffStatus::Pending));
        }
        mapped("pr_created", actions)
    }

    /// An update that adds reviewers asks each new one for a sign-off;
    /// other updates (pushes, edits, labels) change no sign-off.
    fn mr_updated(&self) -> MapResult {
        let previous = self.body.list("/changes/reviewers/previous")?;
        let current = self.body.list("/changes/reviewers/current")?;
        let added: Vec<&Value> = current
            .iter()
            .filter(|r| !previous.iter().any(|p| p["id"] == r["id"]))
            .collect();
        if added.is_empty() {
            return ignored("pr_changed");
        }
        let ticket = self.mr_ticket("/object_attributes")?;
        let actions = added
            .into_iter()
            .map(|r| {
                let email = self.email_of(r)?;
                Ok(self.sign(&ticket, RaciRole::Consulted, email, SignoffStatus::Pending))
            })
            .collect::<Result<Vec<_>, MapError>>()?;
        mapped("pr_reviewer_added", actions)
    }

    /// The acting user's C sign-off moves to `status`; `completes` adds
    /// the A sign-off (GitLab's `approved`: every required approval given).
    fn reviewer(&self, event_type: &str, status: SignoffStatus, completes: bool) -> MapResult {
        let ticket = self.mr_ticket("/object_attributes")?;
        let email = self.email("/user")?;
        let mut actions = vec![self.sign(&ticket, RaciRole::Consulted, email.clone(), status)];
        if completes {
            actions.push(self.sign(&ticket, RaciRole::Accountable, email, status));
        }
        mapped(event_type, actions)
    }

    /// A comment on a merge request; notes on commits, issues and snippets
    /// name no ticket.
    fn note(&self) -> MapResult {
        if self.body.opt_str("/object_attributes/noteable_type")? != Some("MergeRequest") {
            return ignored("note_not_on_merge_request");
        }
        if self.body["object_attributes"]["system"] == true {
            // GitLab's own notes ("added 1 commit", "approved this MR").
            return ignored("system_note");
        }
        let ticket = self.mr_ticket("/merge_request")?;
        let text = self.body.str_at("/object_attributes/note")?.to_owned();
        let by = self.email("/user")?;
        let id = self.body.id_at("/object_attributes/id")?;
        mapped(
            "pr_comment",
            vec![comment(&ticket, text, by, Some(format!("note:{id}")))],
        )
    }

    fn pipeline(&self) -> MapResult {
        if self.body["object_attributes"]["tag"] == true {
            return ignored("pipeline_on_tag");
        }
        let branch = self.body.str_at("/object_attributes/ref")?;
        let ticket = ticket_ref(None, Some(branch.to_owned()));
        let id = self.body.id_at("/object_attributes/id")?;
        let url = self
            .body
            .opt_str("/object_attributes/url")?
            .map(str::to_owned)
            .or_else(|| {
                let project = self.body["project"]["web_url"].as_str()?;
                Some(format!("{project}/-/pipelines/{id}"))
            })
            .unwrap_or_default();
        match self.body.str_at("/object_attributes/status")? {
            "success" => mapped(
                "pipeline_success",
                vec![comment(
                    &ticket,
                    format!("Pipeline #{id} passed: {url}"),
                    self.pusher(),
                    None,
                )],
            ),
            "failed" => mapped(
                "pipeline_failed",
                vec![Action::Escalate(Escalate {
                    ticket,
                    escalated_by: self.pusher(),
                    reason: Some(format!("Pipeline #{id} failed: {url}")),
                })],
            ),
            // Running, pending, cancelled, skipped, manual: nothing about
            // the work yet.
            _ => ignored("pipeline_pending"),
        }
    }

    /// Who a pipeline speaks for: whoever triggered it (`user`, the pusher
    /// for a push pipeline) when known, else the commit author's e-mail,
    /// else `ci_actor`.
    fn pusher(&self) -> String {
        self.body
            .pointer("/user")
            .and_then(|u| self.email_of(u).ok())
            .or_else(|| {
                self.body["commit"]["author"]["email"]
                    .as_str()
                    .filter(|m| real_email(m))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| config_str(self.config, "ci_actor", "gitlab-ci").to_owned())
    }

    fn push(&self) -> MapResult {
        let git_ref = self.body.str_at("/ref")?;
        let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
            return ignored("tag_pushed");
        };
        let ticket = ticket_ref(None, Some(branch.to_owned()));
        let mut actions = Vec::new();
        for (i, commit) in self.body.list("/commits")?.iter().enumerate() {
            let id = commit.str_at("/id")?;
            let message = commit.str_at("/message")?.trim();
            let author = match commit.opt_str("/author/email")?.filter(|m| real_email(m)) {
                Some(m) => m.to_owned(),
                // A redacted commit e-mail: the pusher, by username.
                None => {
                    let username = self.body.opt_str("/user_username")?.ok_or_else(|| {
                        malformed(format!(
                            "field `/commits/{i}/author/email` is not an e-mail and `/user_username` is missing"
                        ))
                    })?;
                    self.users.email(&[username], &format!("`{username}`"))?
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
            // A deleted branch (`after` all zeros) or a push of no commits.
            return ignored("push_without_commits");
        }
        mapped("commit_pushed", actions)
    }
}

/// An address, not GitLab's `[REDACTED]` or an empty string.
fn real_email(m: &str) -> bool {
    m.contains('@') && !m.contains(char::is_whitespace)
}
