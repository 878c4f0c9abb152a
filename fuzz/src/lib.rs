//! Helpers the fuzz targets share: host actions built from fuzzer bytes,
//! and a decoder of the canonical action JSON written here, independently
//! of `host::action`, so a round trip through it checks that the rendering
//! loses nothing.

use arbitrary::{Result, Unstructured};
use host::action::{Action, MapErrorKind, Priority, RaciRole, SignoffStatus, TicketRef};
use serde_json::{Map, Value};

/// Text for an action field: mostly arbitrary, sometimes one of the
/// values validation treats specially (empty, blank, an e-mail, a status).
pub fn text(u: &mut Unstructured<'_>) -> Result<String> {
    const SPECIAL: [&str; 8] = [
        "",
        "  ",
        "a@b.co",
        " ann@example.com ",
        "IN_PROGRESS",
        "line\nbreak",
        "nul\0",
        "\u{1b}[31mred",
    ];
    if u.ratio(1, 4)? {
        Ok((*u.choose(&SPECIAL)?).to_owned())
    } else {
        u.arbitrary()
    }
}

/// `None`, or text as [`text`] makes it.
pub fn opt_text(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    if u.arbitrary()? {
        text(u).map(Some)
    } else {
        Ok(None)
    }
}

pub fn ticket_ref(u: &mut Unstructured<'_>) -> Result<TicketRef> {
    Ok(TicketRef {
        guid: opt_text(u)?,
        external_id: opt_text(u)?,
        branch: opt_text(u)?,
        from_action: if u.arbitrary()? {
            Some(u.int_in_range(0..=8)?)
        } else {
            None
        },
    })
}

/// One host action of any kind.
pub fn action(u: &mut Unstructured<'_>) -> Result<Action> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Action::Create {
            subject: text(u)?,
            description: text(u)?,
            priority: *u.choose(&Priority::ALL)?,
            ticket_type: text(u)?,
            requested_by: opt_text(u)?,
            external_id: opt_text(u)?,
            labels: {
                let n = u.int_in_range(0..=4)?;
                (0..n).map(|_| text(u)).collect::<Result<_>>()?
            },
        },
        1 => Action::StatusChange {
            ticket: ticket_ref(u)?,
            status: text(u)?,
            changed_by: text(u)?,
        },
        2 => Action::Comment {
            ticket: ticket_ref(u)?,
            comment: text(u)?,
            commented_by: text(u)?,
            external_comment_id: opt_text(u)?,
        },
        3 => Action::Assign {
            ticket: ticket_ref(u)?,
            assigned_to: text(u)?,
            assigned_by: text(u)?,
        },
        4 => Action::Signoff {
            ticket: ticket_ref(u)?,
            activity: text(u)?,
            role: *u.choose(&[
                RaciRole::Responsible,
                RaciRole::Accountable,
                RaciRole::Consulted,
                RaciRole::Informed,
            ])?,
            email: text(u)?,
            signoff_status: *u.choose(&[
                SignoffStatus::Pending,
                SignoffStatus::Approved,
                SignoffStatus::Rejected,
            ])?,
        },
        5 => Action::LinkPr {
            ticket: ticket_ref(u)?,
            pr_id: text(u)?,
            repo: text(u)?,
            url: opt_text(u)?,
        },
        6 => Action::Resolve {
            ticket: ticket_ref(u)?,
            resolved_by: text(u)?,
        },
        _ => Action::Escalate {
            ticket: ticket_ref(u)?,
            escalated_by: text(u)?,
            reason: opt_text(u)?,
        },
    })
}

/// A list of actions, `create`s first often enough for `from_action` to
/// point at one.
pub fn actions(u: &mut Unstructured<'_>) -> Result<Vec<Action>> {
    let n = u.int_in_range(0..=6)?;
    (0..n).map(|_| action(u)).collect()
}

/// Decodes the canonical rendering (`host::action` module docs) back into
/// an action; `None` when `v` is not one. Strict: an unknown key, a key of
/// another kind of action or a value of the wrong type is `None`.
pub fn decode_action(v: &Value) -> Option<Action> {
    let m = v.as_object()?;
    let mut d = Decoder {
        m,
        used: vec!["action"],
    };
    let kind = m.get("action")?.as_str()?;
    let ticket = |d: &mut Decoder<'_>| -> Option<TicketRef> {
        Some(TicketRef {
            guid: d.opt("ticket_guid")?,
            external_id: d.opt("external_id")?,
            branch: d.opt("branch")?,
            from_action: match d.m.get("from_action") {
                None => None,
                Some(n) => {
                    d.used.push("from_action");
                    Some(u32::try_from(n.as_u64()?).ok()?)
                }
            },
        })
    };
    let action = match kind {
        "create" => Action::Create {
            subject: d.req("subject")?,
            description: d.req("description")?,
            priority: Priority::parse(&d.req("priority")?)?,
            ticket_type: d.req("ticket_type")?,
            requested_by: d.opt("requested_by")?,
            external_id: d.opt("external_id")?,
            labels: match m.get("labels") {
                None => Vec::new(),
                Some(l) => {
                    d.used.push("labels");
                    let labels = l
                        .as_array()?
                        .iter()
                        .map(|s| s.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()?;
                    // An empty list is rendered by leaving the key out.
                    if labels.is_empty() {
                        return None;
                    }
                    labels
                }
            },
        },
        "status_change" => Action::StatusChange {
            ticket: ticket(&mut d)?,
            status: d.req("status")?,
            changed_by: d.req("changed_by")?,
        },
        "comment" => Action::Comment {
            ticket: ticket(&mut d)?,
            comment: d.req("comment")?,
            commented_by: d.req("commented_by")?,
            external_comment_id: d.opt("external_comment_id")?,
        },
        "assign" => Action::Assign {
            ticket: ticket(&mut d)?,
            assigned_to: d.req("assigned_to")?,
            assigned_by: d.req("assigned_by")?,
        },
        "signoff" => Action::Signoff {
            ticket: ticket(&mut d)?,
            activity: d.req("activity")?,
            role: match d.req("role")?.as_str() {
                "R" => RaciRole::Responsible,
                "A" => RaciRole::Accountable,
                "C" => RaciRole::Consulted,
                "I" => RaciRole::Informed,
                _ => return None,
            },
            email: d.req("email")?,
            signoff_status: match d.req("signoff_status")?.as_str() {
                "PENDING" => SignoffStatus::Pending,
                "APPROVED" => SignoffStatus::Approved,
                "REJECTED" => SignoffStatus::Rejected,
                _ => return None,
            },
        },
        "link_pr" => Action::LinkPr {
            ticket: ticket(&mut d)?,
            pr_id: d.req("pr_id")?,
            repo: d.req("repo")?,
            url: d.opt("url")?,
        },
        "resolve" => Action::Resolve {
            ticket: ticket(&mut d)?,
            resolved_by: d.req("resolved_by")?,
        },
        "escalate" => Action::Escalate {
            ticket: ticket(&mut d)?,
            escalated_by: d.req("escalated_by")?,
            reason: d.opt("reason")?,
        },
        "set_fields" => Action::SetFields {
            ticket: ticket(&mut d)?,
            fields: {
                d.used.push("fields");
                m.get("fields")?
                    .as_object()?
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect::<Option<Vec<_>>>()?
            },
            changed_by: d.req("changed_by")?,
        },
        "update" => Action::Update {
            ticket: ticket(&mut d)?,
            subject: d.opt("subject")?,
            description: d.opt("description")?,
            priority: match d.opt("priority")? {
                None => None,
                Some(p) => Some(Priority::parse(&p)?),
            },
            ticket_type: d.opt("ticket_type")?,
            changed_by: d.req("changed_by")?,
        },
        _ => return None,
    };
    m.keys()
        .all(|k| d.used.contains(&k.as_str()))
        .then_some(action)
}

struct Decoder<'v> {
    m: &'v Map<String, Value>,
    used: Vec<&'static str>,
}

impl Decoder<'_> {
    fn req(&mut self, key: &'static str) -> Option<String> {
        self.used.push(key);
        self.m.get(key)?.as_str().map(str::to_owned)
    }

    /// `Some(None)` when absent, `None` when present but not a string.
    fn opt(&mut self, key: &'static str) -> Option<Option<String>> {
        match self.m.get(key) {
            None => Some(None),
            Some(v) => {
                self.used.push(key);
                v.as_str().map(|s| Some(s.to_owned()))
            }
        }
    }
}

/// The action objects in a JSON document: a list of them, a mapper's
/// `{"actions": [...]}` or a fixture's `{"expect": {"actions": [...]}}`.
/// `None` when `data` is not JSON, so a target can fall back to reading
/// its input as fuzzer bytes.
pub fn json_actions(data: &[u8]) -> Option<Vec<Value>> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let list = match &v {
        Value::Array(_) => &v,
        Value::Object(m) if m.contains_key("expect") => &v["expect"]["actions"],
        _ => &v["actions"],
    };
    Some(list.as_array().cloned().unwrap_or_default())
}

/// A map-error kind from fuzzer bytes.
pub fn map_error_kind(u: &mut Unstructured<'_>) -> Result<MapErrorKind> {
    u.choose(&MapErrorKind::ALL).copied()
}

/// Percent-encodes every byte but unreserved ones (RFC 3986), as a sender
/// building a query string would.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
