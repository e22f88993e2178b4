//! Instants as the trust texts write them: RFC 3339 UTC (`2026-11-24T20:15:03Z`)
//! in statements and the log, and OpenSSH's `YYYYMMDD[HHMM[SS]][Z]` in
//! allowed_signers.

/// Seconds since the epoch of a civil UTC date and time.
fn civil(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // days-from-civil (proleptic Gregorian), the inverse of store::rfc3339.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `2026-11-24T20:15:03Z` as seconds since the epoch (UTC only, as opsdeploy writes).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits(&s[r]);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    civil(
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    )
}

/// OpenSSH's allowed_signers time: `YYYYMMDD`, `YYYYMMDDHHMM` or
/// `YYYYMMDDHHMMSS`, optionally ending in `Z`. opsdeploy reads every one as
/// UTC (ssh-keygen reads those without `Z` in local time), so an approval is
/// judged the same on every machine.
pub fn parse_openssh(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let n = |r: std::ops::Range<usize>| digits(s.get(r)?);
    let (h, m, sec) = match s.len() {
        8 => (0, 0, 0),
        12 => (n(8..10)?, n(10..12)?, 0),
        14 => (n(8..10)?, n(10..12)?, n(12..14)?),
        _ => return None,
    };
    civil(n(0..4)?, n(4..6)?, n(6..8)?, h, m, sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rfc3339;

    #[test]
    fn rfc3339_round_trips_the_stores_format() {
        for secs in [0, 951_782_400, 1_795_550_103, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(parse_rfc3339("2026-11-24 19:55:03Z"), None);
        assert_eq!(parse_rfc3339("2026-13-24T19:55:03Z"), None);
        assert_eq!(parse_rfc3339("2026-11-24T19:55:03+01:00"), None);
    }

    #[test]
    fn openssh_times_have_three_lengths_and_an_optional_z() {
        assert_eq!(
            parse_openssh("20261124"),
            parse_rfc3339("2026-11-24T00:00:00Z")
        );
        assert_eq!(
            parse_openssh("202611241955Z"),
            parse_rfc3339("2026-11-24T19:55:00Z")
        );
        assert_eq!(
            parse_openssh("20261124195503"),
            parse_rfc3339("2026-11-24T19:55:03Z")
        );
        assert_eq!(parse_openssh("2026112"), None);
        assert_eq!(parse_openssh("2026x124"), None);
    }
}
