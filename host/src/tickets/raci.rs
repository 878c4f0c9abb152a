//! RACI sign-off rules that need no storage.

use std::collections::BTreeMap;

use crate::store::Signoff;

/// Per activity: fully signed when it has at least one A entry, every A
/// and C entry is APPROVED, and no entry is REJECTED.
pub fn fully_signed(signoffs: &[Signoff]) -> BTreeMap<String, bool> {
    let mut out: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for s in signoffs {
        let (has_a, ok) = out.entry(s.activity.clone()).or_insert((false, true));
        *has_a |= s.role == "A";
        if s.status == "REJECTED"
            || (matches!(s.role.as_str(), "A" | "C") && s.status != "APPROVED")
        {
            *ok = false;
        }
    }
    out.into_iter()
        .map(|(k, (has_a, ok))| (k, has_a && ok))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(activity: &str, role: &str, status: &str) -> Signoff {
        Signoff {
            activity: activity.into(),
            role: role.into(),
            email: format!("{role}@x.io"),
            status: status.into(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn fully_signed_per_activity() {
        let cases: Vec<(Vec<Signoff>, bool)> = vec![
            (vec![s("Dev", "A", "APPROVED")], true),
            (vec![s("Dev", "C", "APPROVED")], false),
            (
                vec![s("Dev", "A", "APPROVED"), s("Dev", "C", "PENDING")],
                false,
            ),
            (
                vec![
                    s("Dev", "A", "APPROVED"),
                    s("Dev", "C", "APPROVED"),
                    s("Dev", "R", "PENDING"),
                ],
                true,
            ),
            (
                vec![s("Dev", "A", "APPROVED"), s("Dev", "I", "REJECTED")],
                false,
            ),
            (vec![s("Dev", "A", "PENDING")], false),
        ];
        for (entries, want) in cases {
            assert_eq!(fully_signed(&entries)["Dev"], want, "{entries:?}");
        }
    }

    #[test]
    fn activities_are_judged_apart() {
        let all = vec![s("Dev", "A", "APPROVED"), s("Ops", "C", "REJECTED")];
        let got = fully_signed(&all);
        assert!(got["Dev"]);
        assert!(!got["Ops"]);
    }
}
