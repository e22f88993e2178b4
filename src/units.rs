//! Sizes and durations as people write them in opsdeploy.hcl and on the command line.

use std::time::Duration;

/// `256MiB`, `1GiB`, `512KiB`, `100MB`, `4096` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 256MiB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// `500ms`, `30s`, `15m`, `2h`, `7d`, or combinations such as `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (e.g. 30s, 15m, 1h30m, 500ms, 7d)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        // Checked: `n * 60` wraps (release) or panics (debug) on a huge
        // number, and adding Durations panics on overflow in every build.
        let too_large = || format!("`{s}` is too large a duration");
        let secs = |per: u64| n.checked_mul(per).map(Duration::from_secs);
        let unit = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            _ => return Err(bad()),
        }
        .ok_or_else(too_large)?;
        total = total.checked_add(unit).ok_or_else(too_large)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().contains("parsecs"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("10").is_err());
    }

    /// Found reading the config reader for the config_hcl fuzz target:
    /// `timeout = "..."` with a huge number panicked (Duration addition
    /// overflow) or, in release, wrapped (`m`, `h`) instead of being refused.
    #[test]
    fn durations_too_large_are_errors_not_panics() {
        let max = u64::MAX;
        for s in [
            format!("{max}s1s"),
            format!("{max}s{max}s"),
            format!("{max}m"),
            format!("{max}h"),
            format!("{}h", max / 3600 + 1),
        ] {
            let err = parse_duration(&s).unwrap_err();
            assert!(err.contains("too large"), "{s}: {err}");
        }
        assert_eq!(
            parse_duration(&format!("{}m", max / 60)).unwrap(),
            Duration::from_secs(max / 60 * 60)
        );
    }
}
