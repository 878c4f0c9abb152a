//! Atlassian Document Format, the rich text of Jira's REST API v3: plain
//! ticket text in (paragraphs at blank lines, hard breaks at newlines) and
//! out (the text of every node; webhooks may also carry wiki text, a plain
//! string, which passes as it is).

use serde_json::{Value, json};

/// `text` as an ADF document.
pub(crate) fn doc(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .split("\n\n")
        .map(|para| {
            let mut content = Vec::new();
            for (i, line) in para.split('\n').enumerate() {
                if i > 0 {
                    content.push(json!({"type": "hardBreak"}));
                }
                // ADF refuses empty text nodes.
                if !line.is_empty() {
                    content.push(json!({"type": "text", "text": line}));
                }
            }
            json!({"type": "paragraph", "content": content})
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// The plain text of a rich-text value: an ADF document or a string.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let blocks: Vec<String> = v["content"]
                .as_array()
                .map(|c| c.iter().map(inline).collect())
                .unwrap_or_default();
            blocks.join("\n\n")
        }
        _ => String::new(),
    }
}

/// The text of one node and everything under it.
fn inline(node: &Value) -> String {
    match node["type"].as_str() {
        Some("text") => node["text"].as_str().unwrap_or("").to_owned(),
        Some("hardBreak") => "\n".to_owned(),
        Some("mention" | "emoji" | "status") => node
            .pointer("/attrs/text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        _ => {
            let parts: Vec<String> = node["content"]
                .as_array()
                .map(|c| c.iter().map(inline).collect())
                .unwrap_or_default();
            // Nested blocks (list items, quotes) each on a line.
            let block = node["content"]
                .as_array()
                .is_some_and(|c| c.iter().any(|n| n.get("content").is_some()));
            parts.join(if block { "\n" } else { "" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_survives_a_round_trip() {
        for t in ["one line", "a\nb", "first\n\nsecond\nthird", ""] {
            assert_eq!(text(&doc(t)), t);
        }
    }

    #[test]
    fn documents_read_as_text() {
        let v = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Hi "},
                {"type": "mention", "attrs": {"id": "1", "text": "@Ann"}},
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "y"}]}]},
            ]},
        ]});
        assert_eq!(text(&v), "Hi @Ann\n\nx\ny");
        assert_eq!(text(&json!("wiki *text*")), "wiki *text*");
        assert_eq!(text(&Value::Null), "");
    }
}
