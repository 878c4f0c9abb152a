//! Drive: a channel notification on `changes.watch` carries no data; the
//! changes are read with `changes.list` from the page token in the
//! provider's state (the first notification only fetches a start token).
//! A changed file linked to a ticket — its app or user property
//! `ticket_guid` — that is shared, with people it was not shared with
//! before, is commented on that ticket with its link and the new grantees
//! (`permissions.list`). The permission ids seen per file are kept in the
//! state, so an edit of a shared file comments nothing.

use mapper_kit::{
    Action, Delivery, LogLevel, MapResult, comment, guid_ref, header, ignored, internal, log,
    malformed, mapped, query_escape, state_get,
};
use serde_json::Value;

use crate::api::{get_unless_gone, set_state as write};
use crate::text::Section;

const EVENT: &str = "drive_shared";
const TOKEN_KEY: &str = "drive:page_token";
/// Change pages read per notification.
const MAX_PAGES: usize = 3;
/// Linked, shared files whose permissions are read per notification.
const MAX_FILES: usize = 10;
/// Largest list of grant ids remembered per file (state values are small).
const MAX_SEEN_BYTES: usize = 4000;

pub fn map(delivery: &Delivery, config: &Value) -> MapResult {
    let cfg = Section::new("drive", config)?;
    let state = header(delivery, "x-goog-resource-state")
        .ok_or_else(|| malformed("missing header `x-goog-resource-state`"))?;
    if state == "sync" {
        return ignored("drive_sync");
    }
    let property = cfg.str("ticket_property", "ticket_guid")?;
    let fallback_by = cfg.str("commented_by", "google-drive")?;
    let stored = state_get(TOKEN_KEY);
    let Some(token) = stored.clone() else {
        let start = get_unless_gone("/drive/v3/changes/startPageToken")?
            .and_then(|a| {
                a.get("startPageToken")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| internal("GET /drive/v3/changes/startPageToken: no `startPageToken`"))?;
        write(TOKEN_KEY, Some(&start), None)?;
        return ignored(EVENT);
    };

    let mut page = token.clone();
    let mut next_token = token.clone();
    let mut files: Vec<Value> = Vec::new();
    for _ in 0..MAX_PAGES {
        let path = format!(
            "/drive/v3/changes?pageToken={}&fields=*",
            query_escape(&page)
        );
        let answer = get_unless_gone(&path)?
            .ok_or_else(|| internal(format!("GET {path} answered 404 or 410")))?;
        for change in answer
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if change.get("removed").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(file) = change.get("file") {
                files.retain(|f| f.get("id") != file.get("id"));
                files.push(file.clone());
            }
        }
        if let Some(t) = answer.get("newStartPageToken").and_then(Value::as_str) {
            next_token = t.to_owned();
            break;
        }
        match answer.get("nextPageToken").and_then(Value::as_str) {
            Some(p) => {
                page = p.to_owned();
                next_token = page.clone();
            }
            None => break,
        }
    }

    let mut actions: Vec<Action> = Vec::new();
    let linked = files.iter().filter_map(|f| {
        let shared = f.get("shared").and_then(Value::as_bool) == Some(true);
        let guid = ["appProperties", "properties"].iter().find_map(|scope| {
            f.pointer(&format!("/{scope}/{property}"))
                .and_then(Value::as_str)
                .filter(|g| !g.trim().is_empty())
        })?;
        shared.then_some((f, guid.trim()))
    });
    for (n, (file, guid)) in linked.enumerate() {
        if n == MAX_FILES {
            log(
                LogLevel::Warn,
                "drive: more shared files than one notification reads; the rest are skipped",
            );
            break;
        }
        let Some(id) = file.get("id").and_then(Value::as_str) else {
            continue;
        };
        let path = format!("/drive/v3/files/{}/permissions?fields=*", query_escape(id));
        let Some(answer) = get_unless_gone(&path)? else {
            continue; // deleted since
        };
        let grants: Vec<&Value> = answer
            .get("permissions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("role").and_then(Value::as_str) != Some("owner"))
            .collect();
        let seen_key = format!("drive:seen:{id}");
        let seen_before = state_get(&seen_key);
        let seen: Vec<&str> = seen_before
            .as_deref()
            .map(|s| s.split(',').collect())
            .unwrap_or_default();
        let mut fresh: Vec<&Value> = grants
            .iter()
            .copied()
            .filter(|p| {
                p.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| !seen.contains(&i))
            })
            .collect();
        let mut ids: Vec<&str> = grants
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_str))
            .collect();
        ids.sort_unstable();
        let now_seen = (!ids.is_empty()).then(|| ids.join(","));
        if now_seen.as_ref().is_some_and(|s| s.len() > MAX_SEEN_BYTES) {
            // Too many grants to remember: better no comment than one on
            // every edit.
            log(
                LogLevel::Warn,
                &format!("drive: file {id} has too many grants to track"),
            );
            continue;
        }
        if now_seen != seen_before {
            write(&seen_key, now_seen.as_deref(), seen_before.as_deref())?;
        }
        if fresh.is_empty() {
            continue;
        }
        fresh.sort_by_key(|p| p.get("id").and_then(Value::as_str).unwrap_or(""));
        let who: Vec<String> = fresh.iter().map(|p| grantee(p)).collect();
        let name = file.get("name").and_then(Value::as_str).unwrap_or("a file");
        let link = file
            .get("webViewLink")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://drive.google.com/file/d/{id}/view"));
        let by = [
            "/sharingUser/emailAddress",
            "/lastModifyingUser/emailAddress",
        ]
        .iter()
        .find_map(|p| file.pointer(p).and_then(Value::as_str))
        .unwrap_or(fallback_by);
        let fresh_ids: Vec<&str> = fresh
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_str))
            .collect();
        actions.push(comment(
            &guid_ref(guid),
            format!("Drive file “{name}” shared with {}: {link}", who.join(", ")),
            by.to_owned(),
            Some(format!("drive:{id}:{}", fresh_ids.join(","))),
        ));
    }
    if next_token != token {
        write(TOKEN_KEY, Some(&next_token), Some(&token))?;
    }
    mapped(EVENT, actions)
}

/// `ann@x.io (writer)`, `anyone with the link (reader)`, `domain x.io (reader)`.
fn grantee(p: &Value) -> String {
    let role = p.get("role").and_then(Value::as_str).unwrap_or("reader");
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    let who = match s("type") {
        Some("anyone") => "anyone with the link".to_owned(),
        Some("domain") => format!("domain {}", s("domain").unwrap_or("?")),
        _ => s("emailAddress")
            .or_else(|| s("displayName"))
            .unwrap_or("someone")
            .to_owned(),
    };
    format!("{who} ({role})")
}
