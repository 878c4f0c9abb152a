//! RFC 3339 instants as the host writes them, read without a date crate
//! (the component stays small): enough to count whole days between two.

/// Seconds since the Unix epoch of an RFC 3339 instant
/// (`2026-11-30T09:00:00.000000Z`, or with a `+hh:mm`/`-hh:mm` offset);
/// `None` when the text is not one.
pub fn epoch_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let s = text.get(from..to)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Skip fractional seconds; what follows is the offset.
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Whole days from `from` to `to` (Python's `timedelta.days`: floored, so
/// 60 days and 23 hours is 60); `None` when either is not RFC 3339.
pub fn whole_days(from: &str, to: &str) -> Option<i64> {
    Some((epoch_seconds(to)? - epoch_seconds(from)?).div_euclid(86_400))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_as_epoch_seconds() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_seconds("2000-03-01T00:00:00.000000Z"),
            Some(951_868_800)
        );
        assert_eq!(
            epoch_seconds("2026-11-30T10:00:00+01:00"),
            epoch_seconds("2026-11-30T09:00:00Z")
        );
        assert_eq!(epoch_seconds("2026-11-30"), None);
        assert_eq!(epoch_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(epoch_seconds("2026-11-30T09:00:00"), None);
    }

    #[test]
    fn whole_days_floor_as_the_seed_counts() {
        let to = "2026-11-30T09:00:00.000000Z";
        assert_eq!(whole_days("2026-10-01T09:00:00.000000Z", to), Some(60));
        assert_eq!(whole_days("2026-10-01T09:00:01.000000Z", to), Some(59));
        // Across a leap day.
        assert_eq!(
            whole_days("2024-02-28T00:00:00Z", "2024-03-01T00:00:00Z"),
            Some(2)
        );
        assert_eq!(whole_days("bad", to), None);
    }
}
