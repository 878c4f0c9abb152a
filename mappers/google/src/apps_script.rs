//! Sheets and Forms, through our Apps Script contract (the script in
//! `examples/apps-script/`): an installable trigger POSTs JSON signed with
//! HMAC-SHA256 (`X-Sluice-Signature`, base64; the host's `apps_script`
//! preset checks it).
//!
//! A sheet edit: `{source: "sheets", id, at, user, spreadsheet {id, name,
//! url}, sheet, row, headers [...], values [...], changes [{column, old,
//! new}]}` — the row's ticket guid is in the column `ticket_column`; the
//! edit becomes a comment listing the changed cells.
//!
//! A form submission: `{source: "forms", id, at, form {id, title},
//! response {id, respondent}, answers {question: answer}}` — a ticket
//! from the answers mapped in `fields`; the other answers are appended to
//! the description as `question: answer` lines.

use mapper_kit::{
    Action, CreateTicket, Fields, MapResult, comment, guid_ref, ignored, malformed, mapped,
};
use serde_json::Value;

use crate::text::{Section, clip, parse_priority};

pub fn sheet_edit(body: &Value, config: &Value) -> MapResult {
    const EVENT: &str = "sheet_updated";
    let cfg = Section::new("sheets", config)?;
    let column = cfg.str("ticket_column", "Ticket")?;
    let headers = body.list("/headers")?;
    let values = body.list("/values")?;
    let at = headers.iter().position(|h| {
        h.as_str()
            .is_some_and(|h| h.trim().eq_ignore_ascii_case(column))
    });
    let Some(guid) = at
        .and_then(|i| values.get(i))
        .map(cell_text)
        .filter(|g| !g.is_empty())
    else {
        // A row of no ticket (or a sheet without the column).
        return ignored(EVENT);
    };
    let changes: Vec<String> = body
        .list("/changes")?
        .iter()
        .filter_map(|c| {
            let name = c.get("column").map(cell_text).filter(|n| !n.is_empty())?;
            let new = c.get("new").map(cell_text).unwrap_or_default();
            Some(
                match c.get("old").map(cell_text).filter(|o| !o.is_empty()) {
                    Some(old) if old == new => return None,
                    Some(old) => format!("{name}: {old} → {new}"),
                    None => format!("{name}: {new}"),
                },
            )
        })
        .collect();
    if changes.is_empty() {
        return ignored(EVENT);
    }
    let sheet = body.opt_str("/sheet")?.unwrap_or("Sheet");
    let row = body.id_at("/row")?;
    let spreadsheet = body
        .opt_str("/spreadsheet/name")?
        .unwrap_or("a spreadsheet");
    let mut text = format!("Sheet “{sheet}” row {row} updated in {spreadsheet}:\n");
    text.push_str(&changes.join("\n"));
    if let Some(url) = body.opt_str("/spreadsheet/url")? {
        text.push_str(&format!("\n{url}"));
    }
    let by = body
        .opt_str("/user")?
        .filter(|u| u.contains('@'))
        .unwrap_or(cfg.str("commented_by", "google-sheets")?);
    let id = body.opt_str("/id")?.map(|i| format!("sheets:{i}"));
    mapped(
        EVENT,
        vec![comment(
            &guid_ref(guid.trim()),
            clip(&text, 20_000),
            by.to_owned(),
            id,
        )],
    )
}

pub fn form_submit(body: &Value, config: &Value) -> MapResult {
    const EVENT: &str = "form_submitted";
    let cfg = Section::new("forms", config)?;
    let fields = Section::new(
        "forms.fields",
        cfg.value.get("fields").unwrap_or(&Value::Null),
    )?;
    let answers = match body.get("answers") {
        Some(Value::Object(a)) => a,
        _ => return Err(malformed("missing object field `answers`")),
    };
    let question = |field: &str, default: &'static str| fields.str(field, default);
    let q_subject = question("subject", "Subject")?;
    let q_description = question("description", "Description")?;
    let q_priority = question("priority", "Priority")?;
    let q_type = question("ticket_type", "Type")?;
    let q_requester = question("requested_by", "Email")?;
    let answer = |q: &str| {
        answers
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(q))
            .map(|(_, v)| cell_text(v))
            .filter(|a| !a.is_empty())
    };
    let title = body.opt_str("/form/title")?.unwrap_or("Form");
    let subject = answer(q_subject).unwrap_or_else(|| format!("{title} response"));
    let mut description = answer(q_description).unwrap_or_default();
    let mapped_questions = [q_subject, q_description, q_priority, q_type, q_requester];
    let rest: Vec<String> = answers
        .iter()
        .filter(|(k, _)| {
            !mapped_questions
                .iter()
                .any(|q| k.trim().eq_ignore_ascii_case(q))
        })
        .map(|(k, v)| format!("{}: {}", k.trim(), cell_text(v)))
        .collect();
    if !rest.is_empty() {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&rest.join("\n"));
    }
    let priority = match answer(q_priority).and_then(|p| parse_priority(&p)) {
        Some(p) => p,
        None => cfg.priority("priority")?,
    };
    let ticket_type = answer(q_type)
        .map(|t| t.trim().to_ascii_uppercase().replace(' ', "_"))
        .unwrap_or(cfg.str("ticket_type", "REQUEST")?.to_owned());
    let requested_by = answer(q_requester)
        .or_else(|| body.pointer("/response/respondent").map(cell_text))
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| e.contains('@'));
    let form = body.opt_str("/form/id")?;
    let response = body.opt_str("/response/id")?.or(body.opt_str("/id")?);
    let external_id = match (form, response) {
        (Some(f), Some(r)) => Some(format!("{f}:{r}")),
        (None, Some(r)) => Some(r.to_owned()),
        _ => None,
    };
    mapped(
        EVENT,
        vec![Action::Create(CreateTicket {
            subject: clip(&subject, 250),
            description: clip(&description, 20_000),
            priority,
            ticket_type,
            requested_by,
            external_id,
            labels: vec!["google-forms".into()],
        })],
    )
}

/// A cell or answer as text: strings as they are, numbers and booleans
/// written out, a checkbox answer's list joined with `, `.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_owned(),
        Value::Array(items) => items
            .iter()
            .map(cell_text)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
