//! Cron schedules of workflows started with `cron_schedule`: the syntax Temporal accepts (five
//! fields `minute hour day-of-month month day-of-week`, the `@hourly`-style descriptors and
//! `@every <duration>`, all in UTC) and the backoff until the next run.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, Timelike, Utc};

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `@every 90s`: runs this long apart (whole seconds, at least one).
    Every(Duration),
    /// Five calendar fields, each a 64-bit set of allowed values.
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// Whether day-of-month or day-of-week was `*`/`?` (cron's OR rule applies otherwise).
        dom_star: bool,
        dow_star: bool,
    },
}

/// Why a cron string was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid CronSchedule {schedule:?}: {reason}")]
pub struct CronError {
    schedule: String,
    reason: String,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses a schedule; a `CRON_TZ=`/`TZ=` prefix is accepted only for UTC.
    pub fn parse(s: &str) -> Result<Self, CronError> {
        let err = |reason: &str| CronError {
            schedule: s.to_string(),
            reason: reason.to_string(),
        };
        let mut spec = s.trim();
        if let Some(rest) = spec
            .strip_prefix("CRON_TZ=")
            .or_else(|| spec.strip_prefix("TZ="))
        {
            let (tz, rest) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| err("missing fields after the time zone"))?;
            if !matches!(tz, "UTC" | "Etc/UTC" | "GMT") {
                return Err(err("only UTC is supported as a time zone"));
            }
            spec = rest.trim();
        }
        if let Some(d) = spec.strip_prefix("@every") {
            let d = parse_go_duration(d.trim()).ok_or_else(|| err("bad @every duration"))?;
            let secs = d.as_secs().max(1);
            return Ok(Schedule::Every(Duration::from_secs(secs)));
        }
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => return Err(err("unknown descriptor")),
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(err(
                "expected 5 fields: minute hour day-of-month month day-of-week",
            ));
        }
        let f = |i: usize, lo: u32, hi: u32, names: &[&str]| {
            parse_field(fields[i], lo, hi, names).map_err(|r| err(&r))
        };
        let minute = f(0, 0, 59, &[])?;
        let hour = f(1, 0, 23, &[])?;
        let dom = f(2, 1, 31, &[])?;
        let month = f(3, 1, 12, &MONTHS)?;
        let mut dow = f(4, 0, 7, &DAYS)?;
        if dow & (1 << 7) != 0 {
            dow |= 1; // 7 is Sunday too
        }
        let star = |x: &str| x == "*" || x == "?";
        Ok(Schedule::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star: star(fields[2]),
            dow_star: star(fields[4]),
        })
    }

    /// The first scheduled instant strictly after `t` (None if there is none in five years).
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        match self {
            Schedule::Every(d) => {
                let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + *d)
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                dom_star,
                dow_star,
            } => {
                let t: DateTime<Utc> = t.into();
                // Start at the next whole minute.
                let mut c = t.with_second(0)?.with_nanosecond(0)? + chrono::Duration::minutes(1);
                let end = t + chrono::Duration::days(5 * 366);
                let has = |set: u64, v: u32| set & (1u64 << v) != 0;
                while c < end {
                    if !has(*month, c.month()) {
                        c = first_of_next_month(c)?;
                        continue;
                    }
                    let dom_ok = has(*dom, c.day());
                    let dow_ok = has(*dow, c.weekday().num_days_from_sunday());
                    let day_ok = if *dom_star || *dow_star {
                        dom_ok && dow_ok
                    } else {
                        dom_ok || dow_ok
                    };
                    if !day_ok {
                        c = (c + chrono::Duration::days(1))
                            .with_hour(0)?
                            .with_minute(0)?;
                        continue;
                    }
                    if !has(*hour, c.hour()) {
                        c = (c + chrono::Duration::hours(1)).with_minute(0)?;
                        continue;
                    }
                    if !has(*minute, c.minute()) {
                        c += chrono::Duration::minutes(1);
                        continue;
                    }
                    return Some(c.into());
                }
                None
            }
        }
    }

    /// How long a run closing at `now` waits before the next one starts: until the next scheduled
    /// instant, rounded up to whole seconds (as Temporal does).
    pub fn backoff(&self, now: SystemTime) -> Option<Duration> {
        let next = self.next_after(now)?;
        let d = next.duration_since(now).unwrap_or_default();
        Some(Duration::from_secs(
            d.as_secs() + u64::from(d.subsec_nanos() > 0),
        ))
    }
}

fn first_of_next_month(c: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (y, m) = if c.month() == 12 {
        (c.year() + 1, 1)
    } else {
        (c.year(), c.month() + 1)
    };
    c.with_day(1)?
        .with_hour(0)?
        .with_minute(0)?
        .with_month(m)?
        .with_year(y)
}

/// One field: `*`, `?`, `a`, `a-b`, `*/n`, `a-b/n`, `a/n` and comma lists, with names.
fn parse_field(field: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + lo);
        }
        let v: u32 = s.parse().map_err(|_| format!("bad value {s:?}"))?;
        if v < lo || v > hi {
            return Err(format!("value {v} out of range {lo}-{hi}"));
        }
        Ok(v)
    };
    let mut set = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step {s:?}"))?;
                if step == 0 {
                    return Err("step must be positive".into());
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if step.is_some() { hi } else { a })
        };
        if a > b {
            return Err(format!("empty range {range:?}"));
        }
        let mut v = a;
        while v <= b {
            set |= 1u64 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(set)
}

/// A Go duration such as `90s`, `1h30m`, `500ms`.
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * unit;
    }
    // Go's durations are signed 64-bit nanoseconds: anything longer does not parse there either.
    (total.is_finite() && total <= crate::clock::convert::MAX_DURATION.as_secs_f64())
        .then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .into()
    }
    fn next(spec: &str, from: &str) -> String {
        let t: DateTime<Utc> = Schedule::parse(spec)
            .unwrap()
            .next_after(at(from))
            .unwrap()
            .into();
        t.to_rfc3339()
    }

    #[test]
    fn calendar_fields() {
        assert_eq!(
            next("* * * * *", "2026-11-25T10:00:30Z"),
            "2026-11-25T10:01:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-25T10:00:00Z"),
            "2026-11-25T10:15:00+00:00"
        );
        assert_eq!(
            next("0 9 * * MON-FRI", "2026-11-27T10:00:00Z"),
            "2026-11-30T09:00:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2026-11-25T10:59:59Z"),
            "2026-11-25T11:00:00+00:00"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-03-01T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        assert_eq!(
            next("30 4 1,15 * 5", "2026-11-25T00:00:00Z"),
            "2026-11-27T04:30:00+00:00"
        );
        assert_eq!(
            next("0 0 * DEC 7", "2026-11-25T00:00:00Z"),
            "2026-12-06T00:00:00+00:00"
        );
        assert_eq!(
            next("CRON_TZ=UTC 5 4 * * *", "2026-11-25T05:00:00Z"),
            "2026-11-26T04:05:00+00:00"
        );
    }

    #[test]
    fn every_and_backoff() {
        let s = Schedule::parse("@every 2s").unwrap();
        assert_eq!(s, Schedule::Every(Duration::from_secs(2)));
        let from = at("2026-11-25T10:00:00.250Z");
        assert_eq!(s.backoff(from), Some(Duration::from_secs(2)));
        let m = Schedule::parse("* * * * *").unwrap();
        assert_eq!(m.backoff(from), Some(Duration::from_secs(60)));
        assert_eq!(
            Schedule::parse("@every 1h30m").unwrap(),
            Schedule::Every(Duration::from_secs(5400))
        );
    }

    #[test]
    fn rejects_bad_schedules() {
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "* * * * * *",
            "@sometimes",
            "@every",
            "@every 5x",
            "*/0 * * * *",
            "5-1 * * * *",
            "CRON_TZ=Europe/Paris * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
