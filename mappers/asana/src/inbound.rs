//! Webhook event batches → ticket actions.

use mapper_kit::{
    Action, Assign, CreateTicket, Delivery, Fields, LogLevel, MapError, MapResult, RaciRole,
    Resolve, SignoffStatus, StatusChange, TicketRef, answer_str, comment, get_json, ignored,
    json_body, log, mapped, signoff,
};
use serde_json::Value;

use crate::{Config, email_of};

pub(crate) fn map(delivery: &Delivery, cfg: &Config) -> MapResult {
    let body = json_body(delivery)?;
    let events = match body.get("events") {
        Some(Value::Array(events)) => events,
        _ => return Err(mapper_kit::malformed("missing field `/events` (a list)")),
    };
    if events.is_empty() {
        return ignored("heartbeat");
    }
    let mut batch = Batch {
        cfg,
        actions: Vec::new(),
        created: Vec::new(),
    };
    let mut mapped_types: Vec<&'static str> = Vec::new();
    let mut ignored_type = "event";
    for (i, event) in events.iter().enumerate() {
        let before = batch.actions.len();
        let event_type = batch.event(event).map_err(|e| MapError {
            kind: e.kind,
            message: format!("events[{i}]: {}", e.message),
        })?;
        if batch.actions.len() > before {
            if !mapped_types.contains(&event_type) {
                mapped_types.push(event_type);
            }
        } else if i == 0 {
            ignored_type = event_type;
        }
    }
    if mapped_types.is_empty() {
        return ignored(ignored_type);
    }
    mapped(&mapped_types.join(","), batch.actions)
}

/// The actions of one delivery so far.
struct Batch<'a> {
    cfg: &'a Config,
    actions: Vec<Action>,
    /// Task gids created by this batch, with the index of their `create`.
    created: Vec<(String, u32)>,
}

impl Batch<'_> {
    /// Maps one event, adding its actions; answers its event type.
    fn event(&mut self, event: &Value) -> Result<&'static str, MapError> {
        let user = match event.get("user") {
            None | Some(Value::Null) => None,
            Some(u) => Some(u.id_at("/gid")?),
        };
        if user.is_some() && user == self.cfg.bot_user_gid {
            return Ok("own_event");
        }
        let action = event.str_at("/action")?;
        let resource_type = event.str_at("/resource/resource_type")?;
        let gid = event.id_at("/resource/gid")?;
        let parent_type = event.opt_str("/parent/resource_type")?;
        let user = user.as_deref();
        match (resource_type, action, parent_type) {
            ("task", "added", Some("project")) => {
                let project = event.id_at("/parent/gid")?;
                self.task_created(&gid, &project, user)
                    .map(|()| "task_created")
            }
            ("task", "added", Some("section")) => {
                let section = event.id_at("/parent/gid")?;
                self.task_moved(&gid, &section, user)
            }
            ("task", "changed", _) => match event.opt_str("/change/field")? {
                Some("completed") => self.task_completed(&gid, user),
                Some("assignee") => self.task_assigned(&gid, event, user),
                _ => Ok("task_changed"),
            },
            ("task", "deleted", _) => {
                let changed_by = self.actor(user)?;
                let ticket = self.ticket(&gid);
                self.actions.push(Action::StatusChange(StatusChange {
                    ticket,
                    status: "CANCELLED".into(),
                    changed_by,
                }));
                Ok("task_deleted")
            }
            ("story", "added", _) => {
                if event.opt_str("/resource/resource_subtype")? != Some("comment_added") {
                    // System stories: "moved to section", "assigned", … arrive as events of their own.
                    return Ok("story_other");
                }
                self.story_added(&gid)
            }
            ("task", _, _) => Ok("task_other"),
            _ => Ok("other_resource"),
        }
    }

    /// Whoever acted, by e-mail; an event naming nobody (a rule) is the
    /// configured automation actor's.
    fn actor(&self, user: Option<&str>) -> Result<String, MapError> {
        match user {
            Some(u) => email_of(self.cfg, u),
            None => Ok(self.cfg.automation_actor.clone()),
        }
    }

    /// The ticket mirroring task `gid`: its link, or this batch's `create`.
    fn ticket(&self, gid: &str) -> TicketRef {
        TicketRef {
            guid: None,
            external_id: Some(gid.to_owned()),
            branch: None,
            from_action: self.created.iter().find(|(g, _)| g == gid).map(|(_, i)| *i),
        }
    }

    fn task_created(
        &mut self,
        gid: &str,
        project: &str,
        user: Option<&str>,
    ) -> Result<(), MapError> {
        let path = format!("/tasks/{gid}");
        let task = get_json(&path)?;
        let what = format!("GET {path}");
        let subject = answer_str(&task, "/data/name", &what)?.trim();
        let index = u32::try_from(self.actions.len()).unwrap_or(u32::MAX);
        self.actions.push(Action::Create(CreateTicket {
            subject: if subject.is_empty() {
                format!("Asana task {gid}")
            } else {
                subject.to_owned()
            },
            description: task
                .pointer("/data/notes")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            priority: self.cfg.priority,
            ticket_type: self.cfg.ticket_type.clone(),
            requested_by: None,
            external_id: Some(gid.to_owned()),
            labels: vec!["asana".into()],
        }));
        self.created.push((gid.to_owned(), index));
        let ticket = self.ticket(gid);
        // RACI enrichment is best effort: the ticket matters more than its
        // sign-off requests, so a lookup that fails is logged and skipped.
        if !self.cfg.owner_activities.is_empty() {
            match self.project_owner(project) {
                Ok(Some(owner)) => {
                    for activity in &self.cfg.owner_activities {
                        self.actions.push(signoff(
                            &ticket,
                            activity,
                            RaciRole::Accountable,
                            owner.clone(),
                            SignoffStatus::Pending,
                        ));
                    }
                }
                Ok(None) => {}
                Err(e) => log(
                    LogLevel::Warn,
                    &format!("project {project} owner's sign-off skipped: {}", e.message),
                ),
            }
        }
        if let Some(assignee) = gid_at(&task, "/data/assignee/gid") {
            let people =
                email_of(self.cfg, &assignee).and_then(|a| self.actor(user).map(|b| (a, b)));
            match people {
                Ok((email, by)) => self.assigned(&ticket, email, by),
                Err(e) => log(
                    LogLevel::Warn,
                    &format!("assignee of task {gid} skipped: {}", e.message),
                ),
            }
        }
        Ok(())
    }

    /// The project owner's e-mail, when the project has one.
    fn project_owner(&self, project: &str) -> Result<Option<String>, MapError> {
        let answer = get_json(&format!("/projects/{project}"))?;
        gid_at(&answer, "/data/owner/gid")
            .map(|owner| email_of(self.cfg, &owner))
            .transpose()
    }

    /// Assign to `email`, and request their R sign-off.
    fn assigned(&mut self, ticket: &TicketRef, email: String, by: String) {
        self.actions.push(Action::Assign(Assign {
            ticket: ticket.clone(),
            assigned_to: email.clone(),
            assigned_by: by,
        }));
        self.actions.push(signoff(
            ticket,
            &self.cfg.activity,
            RaciRole::Responsible,
            email,
            SignoffStatus::Pending,
        ));
    }

    fn task_moved(
        &mut self,
        gid: &str,
        section: &str,
        user: Option<&str>,
    ) -> Result<&'static str, MapError> {
        let path = format!("/sections/{section}");
        let answer = get_json(&path)?;
        let name = answer_str(&answer, "/data/name", &format!("GET {path}"))?;
        let Some(status) = self.cfg.status_of(name) else {
            // A section the map does not name (a backlog, a swimlane).
            return Ok("task_moved_unmapped");
        };
        let status = status.to_owned();
        let changed_by = self.actor(user)?;
        let ticket = self.ticket(gid);
        self.actions.push(Action::StatusChange(StatusChange {
            ticket,
            status,
            changed_by,
        }));
        Ok("task_moved")
    }

    fn task_completed(&mut self, gid: &str, user: Option<&str>) -> Result<&'static str, MapError> {
        let path = format!("/tasks/{gid}");
        let task = get_json(&path)?;
        if task.pointer("/data/completed") != Some(&Value::Bool(true)) {
            return Ok("task_uncompleted");
        }
        if let Some(parent) = gid_at(&task, "/data/parent/gid") {
            let name = answer_str(&task, "/data/name", &format!("GET {path}"))?;
            let by = self.actor(user)?;
            let ticket = self.ticket(&parent);
            let text = format!("Subtask completed: {name}");
            self.actions.push(comment(&ticket, text, by, None));
            return Ok("subtask_completed");
        }
        // The seed's row: the assignee resolves; an unassigned task is
        // resolved by whoever completed it.
        let resolved_by = match gid_at(&task, "/data/assignee/gid") {
            Some(assignee) => email_of(self.cfg, &assignee)?,
            None => self.actor(user)?,
        };
        let ticket = self.ticket(gid);
        self.actions.push(Action::Resolve(Resolve {
            ticket,
            resolved_by,
        }));
        Ok("task_completed")
    }

    fn task_assigned(
        &mut self,
        gid: &str,
        event: &Value,
        user: Option<&str>,
    ) -> Result<&'static str, MapError> {
        let assignee = match gid_at(event, "/change/new_value/gid") {
            Some(a) => a,
            // Asana leaves `new_value` out at times: the task says.
            None => match gid_at(&get_json(&format!("/tasks/{gid}"))?, "/data/assignee/gid") {
                Some(a) => a,
                None => return Ok("task_unassigned"),
            },
        };
        let email = email_of(self.cfg, &assignee)?;
        let by = self.actor(user)?;
        let ticket = self.ticket(gid);
        self.assigned(&ticket, email, by);
        Ok("task_assigned")
    }

    fn story_added(&mut self, gid: &str) -> Result<&'static str, MapError> {
        let path = format!("/stories/{gid}");
        let story = get_json(&path)?;
        let what = format!("GET {path}");
        let text = answer_str(&story, "/data/text", &what)?.to_owned();
        let task = gid_at(&story, "/data/target/gid").ok_or_else(|| {
            mapper_kit::internal(format!("{what}: answer has no `/data/target/gid`"))
        })?;
        let by = match gid_at(&story, "/data/created_by/gid") {
            Some(author) => email_of(self.cfg, &author)?,
            None => self.cfg.automation_actor.clone(),
        };
        let ticket = self.ticket(&task);
        self.actions
            .push(comment(&ticket, text, by, Some(gid.to_owned())));
        Ok("story_added")
    }
}

/// A gid at `pointer`, if one is there.
fn gid_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(mapper_kit::id_text)
}
