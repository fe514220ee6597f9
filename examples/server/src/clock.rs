//! Wall-clock time and the ISO 8601 (UTC, millisecond) timestamps of envelopes.
//!
//! Hand-written (Howard Hinnant's civil-date algorithms) rather than a date crate: the server
//! only needs `now`, one output format and the same format back for `since=` timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
// The workspace bans SystemTime::now for the sans-IO core; a server needs the wall clock.
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Seconds since the Unix epoch, now (JWT `exp`/`iat`).
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-01-02T03:04:05.678Z` for epoch milliseconds (what JavaScript's `Date#toISOString` gives).
pub fn iso8601(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only) into epoch milliseconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut dp = date.split('-');
    let (y, m, d) = (dp.next()?.parse::<i64>().ok()?, dp.next()?.parse::<i64>().ok()?, dp.next()?.parse::<i64>().ok()?);
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (time, ""),
    };
    let mut tp = hms.split(':');
    let (h, min, sec) =
        (tp.next()?.parse::<i64>().ok()?, tp.next()?.parse::<i64>().ok()?, tp.next()?.parse::<i64>().ok()?);
    if dp.next().is_some() || tp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || min > 59 || sec > 60 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let milli = frac.get(..frac.len().min(3)).unwrap_or("");
    let milli = if milli.is_empty() { 0 } else { milli.parse::<i64>().ok()? * 10_i64.pow(3 - milli.len() as u32) };
    Some(days_from_civil(y, m, d) * 86_400_000 + h * 3_600_000 + min * 60_000 + sec * 1000 + milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [0, 1, 86_399_999, 951_782_400_000, 1_767_225_600_123, 4_102_444_800_000] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms), "{}", iso8601(ms));
        }
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_iso8601("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_iso8601("1970-01-01"), None);
        assert_eq!(parse_iso8601("1970-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("garbage"), None);
    }
}
