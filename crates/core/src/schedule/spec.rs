//! Schedule specs: the canonical form Temporal stores (`calendar` and `cron_string` turned into
//! `structured_calendar`, defaults filled in) and the evaluation of a spec: the next matching time
//! after an instant, with deterministic jitter, the way Temporal's scheduler computes it.
//!
//! Times have one-second resolution. Calendars are matched in the spec's time zone (IANA name,
//! via `chrono-tz`); a local time that a DST change skips never matches, and a repeated local
//! time matches both of its instants.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use perdure_proto::api::schedule::v1::{
    CalendarSpec, IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec,
};

use crate::clock::convert::{dur, from_ts, pdur};

/// The first and last years a calendar matches (as Temporal).
const MIN_YEAR: i32 = 2000;
const MAX_YEAR: i32 = 2100;
const MAX_COMMENT: usize = 200;
/// Give up a search for a time no exclusion removes after this many candidates.
const MAX_ITERATIONS: usize = 100_000;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Int,
    Year,
    Month,
    Dow,
}

/// A next matching time: `nominal` is the spec's time, `next` the same plus jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextTime {
    pub nominal: SystemTime,
    pub next: SystemTime,
}

/// A spec ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledSpec {
    canonical: ScheduleSpec,
    tz: Tz,
    calendars: Vec<Calendar>,
    excludes: Vec<Calendar>,
    /// (interval, phase) in seconds.
    intervals: Vec<(i64, i64)>,
    /// Unix seconds.
    start: i64,
    end: Option<i64>,
    jitter: Duration,
    seed: String,
}

#[derive(Debug, Clone)]
struct Calendar {
    /// Empty: every year.
    years: Vec<i32>,
    months: u64,
    days_of_month: u64,
    days_of_week: u64,
    hours: u64,
    minutes: u64,
    seconds: u64,
}

fn bits(ranges: &[Range]) -> u64 {
    let mut b = 0u64;
    for_each(ranges, |v| {
        if (0..64).contains(&v) {
            b |= 1 << v
        }
    });
    b
}

fn for_each(ranges: &[Range], mut f: impl FnMut(i32)) {
    for r in ranges {
        let step = if r.step <= 0 { 1 } else { r.step };
        let end = r.end.max(r.start);
        let mut v = r.start;
        while v <= end {
            f(v);
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    }
}

fn has(bits: u64, v: u32) -> bool {
    v < 64 && bits & (1 << v) != 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Calendar {
    fn new(c: &StructuredCalendarSpec) -> Self {
        let mut years = Vec::new();
        for_each(&c.year, |y| years.push(y));
        Calendar {
            years,
            months: bits(&c.month),
            days_of_month: bits(&c.day_of_month),
            days_of_week: bits(&c.day_of_week),
            hours: bits(&c.hour),
            minutes: bits(&c.minute),
            seconds: bits(&c.second),
        }
    }

    fn year(&self, y: i32) -> bool {
        self.years.is_empty() || self.years.contains(&y)
    }

    fn matches_civil(&self, t: &NaiveDateTime) -> bool {
        self.year(t.year())
            && has(self.months, t.month())
            && has(self.days_of_month, t.day())
            && has(self.days_of_week, t.weekday().num_days_from_sunday())
            && has(self.hours, t.hour())
            && has(self.minutes, t.minute())
            && has(self.seconds, t.second())
    }

    /// The earliest matching civil time at or after the given fields (up to `MAX_YEAR`).
    fn next_civil(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let (mut y, mut mo, mut d) = (t.year(), t.month(), t.day());
        let (mut h, mut mi, mut s) = (t.hour(), t.minute(), t.second());
        loop {
            if s >= 60 {
                mi += 1;
                s = 0;
            }
            if mi >= 60 {
                h += 1;
                mi = 0;
            }
            if h >= 24 {
                d += 1;
                h = 0;
            }
            if d > days_in_month(y, mo) {
                mo += 1;
                d = 1;
            }
            if mo > 12 {
                y += 1;
                mo = 1;
            }
            if y > MAX_YEAR {
                return None;
            }
            if !self.year(y) {
                (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0);
                continue;
            }
            if !has(self.months, mo) {
                (mo, d, h, mi, s) = (mo + 1, 1, 0, 0, 0);
                continue;
            }
            let date = NaiveDate::from_ymd_opt(y, mo, d)?;
            if !has(self.days_of_month, d)
                || !has(self.days_of_week, date.weekday().num_days_from_sunday())
            {
                (d, h, mi, s) = (d + 1, 0, 0, 0);
                continue;
            }
            if !has(self.hours, h) {
                (h, mi, s) = (h + 1, 0, 0);
                continue;
            }
            if !has(self.minutes, mi) {
                (mi, s) = (mi + 1, 0);
                continue;
            }
            if !has(self.seconds, s) {
                s += 1;
                continue;
            }
            return date.and_hms_opt(h, mi, s);
        }
    }

    /// The earliest instant (Unix seconds) after `after` whose local time in `tz` matches.
    fn next(&self, tz: &Tz, after: i64) -> Option<i64> {
        // An instant after `after` has a local time no earlier than `after`'s minus the largest
        // backward clock change (a few hours at most), so search from there.
        let local = tz.timestamp_opt(after, 0).single()?.naive_local();
        let mut civil = local - chrono::Duration::hours(3);
        let mut best: Option<i64> = None;
        let mut first_civil: Option<NaiveDateTime> = None;
        for _ in 0..MAX_ITERATIONS {
            let c = self.next_civil(civil)?;
            if let Some(f) = first_civil
                && c > f + chrono::Duration::hours(3)
            {
                break;
            }
            let instants: Vec<i64> = match tz.from_local_datetime(&c) {
                LocalResult::Single(t) => vec![t.timestamp()],
                LocalResult::Ambiguous(a, b) => vec![a.timestamp(), b.timestamp()],
                LocalResult::None => vec![],
            };
            for i in instants {
                if i > after {
                    best = Some(best.map_or(i, |b: i64| b.min(i)));
                    first_civil.get_or_insert(c);
                }
            }
            civil = c + chrono::Duration::seconds(1);
        }
        best
    }
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

fn at(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH
    }
}

/// A `Range` with Temporal's defaults applied (step 1, end at least start), as Describe shows it.
fn clean(r: &mut Range) {
    if r.end < r.start {
        r.end = r.start;
    }
    if r.step == 0 {
        r.step = 1;
    }
}

fn clean_calendar(c: &mut StructuredCalendarSpec) {
    for list in [
        &mut c.second,
        &mut c.minute,
        &mut c.hour,
        &mut c.day_of_month,
        &mut c.month,
        &mut c.year,
        &mut c.day_of_week,
    ] {
        list.iter_mut().for_each(clean);
    }
}

fn parse_value(s: &str, min: i32, max: i32, mode: Mode) -> Option<i32> {
    let lower = s.to_ascii_lowercase();
    let named = match mode {
        Mode::Month if s.len() >= 3 => MONTHS
            .iter()
            .position(|m| m.starts_with(&lower))
            .map(|i| i as i32 + 1),
        Mode::Dow if s.len() >= 2 => DAYS
            .iter()
            .position(|d| d.starts_with(&lower))
            .map(|i| i as i32),
        _ => None,
    };
    let v = match named {
        Some(v) => v,
        None => s.parse::<i32>().ok()?,
    };
    (min..=max).contains(&v).then_some(v)
}

/// One field of a `CalendarSpec` (`*`, `x`, `x-z`, `x-z/y`, `x/y`, comma lists) as ranges.
fn make_range(
    s: &str,
    field: &str,
    default: &str,
    min: i32,
    max: i32,
    mode: Mode,
) -> Result<Vec<Range>, String> {
    let mut s = s.trim();
    if s.is_empty() {
        s = default;
    }
    if s == "*" && mode == Mode::Year {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let mut part = part;
        let mut step = 1;
        let mut has_step = false;
        match part.matches('/').count() {
            0 => {}
            1 => {
                let (p, st) = part.split_once('/').unwrap();
                if st.is_empty() {
                    return Err(format!("{field} missing step value"));
                }
                step = st
                    .parse::<i32>()
                    .map_err(|_| format!("{field} has invalid Step"))?;
                if step < 1 {
                    return Err(format!("{field} has invalid Step"));
                }
                part = p;
                has_step = true;
            }
            _ => return Err(format!("{field} has too many slashes")),
        }
        let (mut start, mut end) = (min, max);
        if part != "*" {
            if part.contains('-') {
                let Some((a, b)) = part
                    .split_once('-')
                    .filter(|_| part.matches('-').count() == 1)
                else {
                    return Err(format!("{field} has too many dashes"));
                };
                start = parse_value(a, min, max, mode)
                    .ok_or_else(|| format!("{field} Start is not in range [{min}-{max}]"))?;
                end = parse_value(b, start, max, mode).ok_or_else(|| {
                    format!("{field} End is before Start or not in range [{min}-{max}]")
                })?;
            } else {
                start = parse_value(part, min, max, mode)
                    .ok_or_else(|| format!("{field} is not in range [{min}-{max}]"))?;
                if !has_step {
                    end = start;
                }
            }
        }
        // Sunday may be written 7: fold it into 0.
        if mode == Mode::Dow && end == 7 {
            if (7 - start) % step == 0 && (step > 1 || start > 1) {
                out.push(Range {
                    start: 0,
                    ..Default::default()
                });
                if start == 7 {
                    continue;
                }
            }
            end = 6;
        }
        out.push(Range {
            start,
            end: if start == end { 0 } else { end },
            step: if step == 1 { 0 } else { step },
        });
    }
    Ok(out)
}

/// A `CalendarSpec` as a `StructuredCalendarSpec` (Temporal's defaults: second, minute and
/// hour 0; every day, month, year and day of week).
pub fn structured(c: &CalendarSpec) -> Result<StructuredCalendarSpec, String> {
    let mut errs = Vec::new();
    let mut f =
        |s: &str, field, def, min, max, mode| match make_range(s, field, def, min, max, mode) {
            Ok(r) => r,
            Err(e) => {
                errs.push(e);
                Vec::new()
            }
        };
    let out = StructuredCalendarSpec {
        second: f(&c.second, "Second", "0", 0, 59, Mode::Int),
        minute: f(&c.minute, "Minute", "0", 0, 59, Mode::Int),
        hour: f(&c.hour, "Hour", "0", 0, 23, Mode::Int),
        day_of_week: f(&c.day_of_week, "DayOfWeek", "*", 0, 7, Mode::Dow),
        day_of_month: f(&c.day_of_month, "DayOfMonth", "*", 1, 31, Mode::Int),
        month: f(&c.month, "Month", "*", 1, 12, Mode::Month),
        year: f(&c.year, "Year", "*", MIN_YEAR, MAX_YEAR, Mode::Year),
        comment: c.comment.clone(),
    };
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs.join(", "))
    }
}

/// Go-style duration (`90s`, `1h30m`, `2d`), as `@every` takes it.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
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
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * unit;
        rest = &rest[u..];
    }
    if !total.is_finite() || total > crate::clock::convert::MAX_DURATION.as_secs_f64() {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// A cron string (`[CRON_TZ=zone] fields [# comment]`, 5–7 fields, `@hourly`-style names,
/// `@every d[/phase]`) as a calendar or an interval, plus its time zone name.
#[allow(clippy::type_complexity)]
fn parse_cron(
    c: &str,
) -> Result<(Option<StructuredCalendarSpec>, Option<IntervalSpec>, String), String> {
    let mut c = c.trim();
    let mut tz = String::new();
    if c.starts_with("TZ=") || c.starts_with("CRON_TZ=") {
        let (zone, rest) = c
            .split_once(' ')
            .ok_or("CronString has time zone but missing fields")?;
        tz = zone.split_once('=').map(|x| x.1).unwrap_or("").to_string();
        c = rest;
    }
    let (body, comment) = c.split_once('#').unwrap_or((c, ""));
    let body = body.trim();
    if body.starts_with("@every") {
        let (_, iv) = body
            .split_once(' ')
            .ok_or("CronString does not have interval after @every")?;
        let (every, phase) = iv.trim().split_once('/').unwrap_or((iv.trim(), ""));
        let interval = Some(pdur(parse_duration(every)?));
        let phase = if phase.is_empty() {
            None
        } else {
            Some(pdur(parse_duration(phase)?))
        };
        return Ok((None, Some(IntervalSpec { interval, phase }), String::new()));
    }
    let body = match body {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        b => b,
    };
    let f: Vec<&str> = body.split_whitespace().collect();
    let mut cal = CalendarSpec {
        comment: comment.trim().to_string(),
        ..Default::default()
    };
    let s = |i: usize| f[i].to_string();
    match f.len() {
        5 => {
            (
                cal.minute,
                cal.hour,
                cal.day_of_month,
                cal.month,
                cal.day_of_week,
            ) = (s(0), s(1), s(2), s(3), s(4))
        }
        6 => {
            (
                cal.minute,
                cal.hour,
                cal.day_of_month,
                cal.month,
                cal.day_of_week,
                cal.year,
            ) = (s(0), s(1), s(2), s(3), s(4), s(5))
        }
        7 => {
            (
                cal.second,
                cal.minute,
                cal.hour,
                cal.day_of_month,
                cal.month,
                cal.day_of_week,
                cal.year,
            ) = (s(0), s(1), s(2), s(3), s(4), s(5), s(6))
        }
        _ => return Err("CronString does not have 5-7 fields".into()),
    }
    Ok((Some(structured(&cal)?), None, tz))
}

fn validate_calendar(c: &StructuredCalendarSpec) -> Result<(), String> {
    let mut errs = Vec::new();
    let mut check = |ranges: &[Range], field: &str, min: i32, max: i32| {
        for r in ranges {
            if r.start < min || r.start > max {
                errs.push(format!("{field} Start is not in range [{min}-{max}]"));
            }
            if r.end != 0 && (r.end < r.start || r.end > max) {
                errs.push(format!(
                    "{field} End is before Start or not in range [{min}-{max}]"
                ));
            }
            if r.step < 0 {
                errs.push(format!("{field} has invalid Step"));
            }
        }
    };
    check(&c.second, "Second", 0, 59);
    check(&c.minute, "Minute", 0, 59);
    check(&c.hour, "Hour", 0, 23);
    check(&c.day_of_month, "DayOfMonth", 1, 31);
    check(&c.month, "Month", 1, 12);
    check(&c.year, "Year", MIN_YEAR, MAX_YEAR);
    check(&c.day_of_week, "DayOfWeek", 0, 6);
    if c.comment.len() > MAX_COMMENT {
        errs.push("comment is too long".into());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid calendar spec: {}", errs.join(", ")))
    }
}

fn validate_interval(i: &IntervalSpec) -> Result<(), String> {
    let every = i.interval.as_ref();
    let neg = |d: Option<&perdure_proto::prost_types::Duration>| {
        d.is_some_and(|d| d.seconds < 0 || d.nanos < 0)
    };
    if neg(every) || dur(&i.interval) < Duration::from_secs(1) {
        return Err("interval is too small".into());
    }
    if neg(i.phase.as_ref()) {
        return Err("phase is negative".into());
    }
    if dur(&i.phase) >= dur(&i.interval) {
        return Err("phase cannot be greater than Interval".into());
    }
    Ok(())
}

/// The canonical form Temporal stores: calendars and cron strings turned into structured
/// calendars (and intervals), the cron strings' time zone moved to the spec, ranges cleaned.
/// Errors are the reason only (the caller adds `Invalid schedule spec: `).
pub fn canonicalize(spec: &ScheduleSpec) -> Result<ScheduleSpec, String> {
    let mut s = spec.clone();
    for c in std::mem::take(&mut s.calendar) {
        s.structured_calendar.push(structured(&c)?);
    }
    #[allow(deprecated)]
    for c in std::mem::take(&mut s.exclude_calendar) {
        s.exclude_structured_calendar.push(structured(&c)?);
    }
    let mut cron_tz: Option<String> = None;
    for c in std::mem::take(&mut s.cron_string) {
        let (cal, iv, tz) = parse_cron(&c)?;
        if cron_tz.as_ref().is_some_and(|t| *t != tz) {
            return Err("conflicting timezone names".into());
        }
        cron_tz = Some(tz);
        s.structured_calendar.extend(cal);
        s.interval.extend(iv);
    }
    if let Some(tz) = cron_tz.filter(|t| !t.is_empty()) {
        if (!s.timezone_name.is_empty() && s.timezone_name != tz) || !s.timezone_data.is_empty() {
            return Err("conflicting timezone names".into());
        }
        s.timezone_name = tz;
    }
    for c in &s.structured_calendar {
        validate_calendar(c)?;
    }
    for i in &s.interval {
        validate_interval(i)?;
    }
    s.structured_calendar.iter_mut().for_each(clean_calendar);
    s.exclude_structured_calendar
        .iter_mut()
        .for_each(clean_calendar);
    Ok(s)
}

fn load_tz(name: &str, data: &[u8]) -> Result<Tz, String> {
    if !data.is_empty() {
        return Err("timezone_data is not supported by Perdure; use timezone_name".into());
    }
    match name {
        "" | "UTC" => Ok(Tz::UTC),
        "Local" => Err("unknown time zone Local".into()),
        n => n
            .parse::<Tz>()
            .map_err(|_| format!("unknown time zone {n}")),
    }
}

impl CompiledSpec {
    /// Canonicalizes and compiles `spec`; `seed` makes the jitter differ between schedules
    /// (Temporal seeds it with the namespace id and schedule id).
    pub fn new(spec: &ScheduleSpec, seed: &str) -> Result<CompiledSpec, String> {
        let canonical = canonicalize(spec)?;
        let tz = load_tz(&canonical.timezone_name, &canonical.timezone_data)?;
        let calendars = canonical
            .structured_calendar
            .iter()
            .map(Calendar::new)
            .collect();
        let excludes = canonical
            .exclude_structured_calendar
            .iter()
            .map(Calendar::new)
            .collect();
        let intervals = canonical
            .interval
            .iter()
            .map(|i| {
                (
                    (dur(&i.interval).as_secs() as i64).max(1),
                    dur(&i.phase).as_secs() as i64,
                )
            })
            .collect();
        Ok(CompiledSpec {
            start: canonical
                .start_time
                .as_ref()
                .map(|t| unix(from_ts(t)))
                .unwrap_or(0),
            end: canonical.end_time.as_ref().map(|t| unix(from_ts(t))),
            jitter: dur(&canonical.jitter),
            canonical,
            tz,
            calendars,
            excludes,
            intervals,
            seed: seed.to_string(),
        })
    }

    /// The spec as Temporal stores and describes it.
    pub fn canonical(&self) -> &ScheduleSpec {
        &self.canonical
    }

    /// The earliest calendar or interval time after `after` (Unix seconds), exclusions and
    /// bounds not applied.
    fn raw_next(&self, after: i64) -> Option<i64> {
        let cal = self
            .calendars
            .iter()
            .filter_map(|c| c.next(&self.tz, after));
        let iv = self
            .intervals
            .iter()
            .map(|&(every, phase)| ((after - phase) / every + 1) * every + phase);
        cal.chain(iv).min()
    }

    fn excluded(&self, t: i64) -> bool {
        if self.excludes.is_empty() {
            return false;
        }
        let Some(local) = self.tz.timestamp_opt(t, 0).single() else {
            return false;
        };
        let civil = local.naive_local();
        self.excludes.iter().any(|c| c.matches_civil(&civil))
    }

    /// The first time of the spec strictly after `after`, or `None` when there is none (past
    /// the end time, or nothing matches up to the year 2100).
    pub fn next(&self, after: SystemTime) -> Option<NextTime> {
        let mut t = unix(after).max(self.start - 1);
        let mut nominal = None;
        for _ in 0..MAX_ITERATIONS {
            let n = self.raw_next(t)?;
            if self.end.is_some_and(|e| n > e) || n > MAX_YEAR_END {
                return None;
            }
            if !self.excluded(n) {
                nominal = Some(n);
                break;
            }
            t = n;
        }
        let nominal = nominal?;
        let mut max_jitter = self.jitter;
        if let Some(following) = self.raw_next(nominal) {
            max_jitter = max_jitter.min(Duration::from_secs((following - nominal) as u64));
        }
        Some(NextTime {
            nominal: at(nominal),
            next: at(nominal) + self.jitter_for(nominal, max_jitter),
        })
    }

    /// Deterministic jitter in `[0, max)` for a nominal time (millisecond resolution).
    fn jitter_for(&self, nominal: i64, max: Duration) -> Duration {
        let ms = (max.as_millis() as u64).min(u32::MAX as u64);
        if ms == 0 {
            return Duration::ZERO;
        }
        let mut h: u64 = 0xcbf29ce484222325;
        for b in nominal.to_be_bytes().iter().chain(self.seed.as_bytes()) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        let fp = (h ^ (h >> 32)) & 0xffff_ffff;
        Duration::from_millis((fp * ms) >> 32)
    }

    /// Every time of the spec in `(start, end]`, at most `limit`.
    pub fn times_between(
        &self,
        start: SystemTime,
        end: SystemTime,
        limit: usize,
    ) -> Vec<SystemTime> {
        let mut out = Vec::new();
        let mut t = start;
        while out.len() < limit {
            match self.next(t) {
                Some(n) if n.next <= end => {
                    out.push(n.next);
                    t = n.next;
                }
                _ => break,
            }
        }
        out
    }
}

/// 2101-01-01T00:00:00Z: no calendar time is past it.
const MAX_YEAR_END: i64 = 4_133_980_800;

#[cfg(test)]
mod tests {
    use super::*;
    use perdure_proto::prost_types::Timestamp;

    fn t(s: &str) -> SystemTime {
        let d = chrono::DateTime::parse_from_rfc3339(s).unwrap();
        UNIX_EPOCH + Duration::from_secs(d.timestamp() as u64)
    }
    fn show(x: SystemTime) -> String {
        chrono::DateTime::<chrono::Utc>::from(x)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }
    fn times(spec: &ScheduleSpec, from: &str, n: usize) -> Vec<String> {
        let c = CompiledSpec::new(spec, "seed").unwrap();
        let mut out = Vec::new();
        let mut at = t(from);
        for _ in 0..n {
            let Some(x) = c.next(at) else { break };
            out.push(show(x.next));
            at = x.next;
        }
        out
    }
    fn secs(s: i64) -> Option<perdure_proto::prost_types::Duration> {
        Some(perdure_proto::prost_types::Duration {
            seconds: s,
            nanos: 0,
        })
    }

    #[test]
    fn interval_with_offset_is_phased_from_the_epoch() {
        let spec = ScheduleSpec {
            interval: vec![IntervalSpec {
                interval: secs(3600),
                phase: secs(900),
            }],
            ..Default::default()
        };
        assert_eq!(
            times(&spec, "2026-01-01T10:20:00Z", 3),
            [
                "2026-01-01T11:15:00Z",
                "2026-01-01T12:15:00Z",
                "2026-01-01T13:15:00Z"
            ]
        );
        // Exactly on a time: the next one.
        assert_eq!(
            times(&spec, "2026-01-01T11:15:00Z", 1),
            ["2026-01-01T12:15:00Z"]
        );
    }

    #[test]
    fn calendar_strings_become_structured_with_temporal_defaults() {
        let spec = ScheduleSpec {
            calendar: vec![CalendarSpec {
                hour: "2-10/3".into(),
                day_of_week: "mon-fri".into(),
                comment: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = canonicalize(&spec).unwrap();
        assert!(c.calendar.is_empty());
        let s = &c.structured_calendar[0];
        assert_eq!(
            s.hour,
            [Range {
                start: 2,
                end: 10,
                step: 3
            }]
        );
        assert_eq!(
            s.second,
            [Range {
                start: 0,
                end: 0,
                step: 1
            }]
        );
        assert_eq!(
            s.day_of_month,
            [Range {
                start: 1,
                end: 31,
                step: 1
            }]
        );
        assert!(s.year.is_empty());
        // 2026-01-02 is a Friday, past its last hour (8); then Monday.
        assert_eq!(
            times(&spec, "2026-01-02T09:00:00Z", 4),
            [
                "2026-01-05T02:00:00Z",
                "2026-01-05T05:00:00Z",
                "2026-01-05T08:00:00Z",
                "2026-01-06T02:00:00Z"
            ]
        );
    }

    #[test]
    fn structured_ranges_steps_and_sunday_as_seven() {
        let spec = ScheduleSpec {
            structured_calendar: vec![StructuredCalendarSpec {
                second: vec![Range::default()],
                minute: vec![Range {
                    start: 0,
                    end: 59,
                    step: 20,
                }],
                hour: vec![Range {
                    start: 12,
                    ..Default::default()
                }],
                day_of_month: vec![Range {
                    start: 1,
                    end: 31,
                    step: 1,
                }],
                month: vec![Range {
                    start: 1,
                    end: 12,
                    step: 1,
                }],
                day_of_week: vec![Range {
                    start: 0,
                    end: 6,
                    step: 1,
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            times(&spec, "2026-03-01T12:30:00Z", 3),
            [
                "2026-03-01T12:40:00Z",
                "2026-03-02T12:00:00Z",
                "2026-03-02T12:20:00Z"
            ]
        );
        let cal = structured(&CalendarSpec {
            day_of_week: "5-7".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            cal.day_of_week,
            [
                Range {
                    start: 0,
                    end: 0,
                    step: 0
                },
                Range {
                    start: 5,
                    end: 6,
                    step: 0
                }
            ]
        );
    }

    #[test]
    fn cron_strings_with_time_zone_and_every() {
        let spec = ScheduleSpec {
            cron_string: vec!["CRON_TZ=America/New_York 15 4 * * 1-5".into()],
            ..Default::default()
        };
        let c = canonicalize(&spec).unwrap();
        assert_eq!(c.timezone_name, "America/New_York");
        assert!(c.cron_string.is_empty());
        // 04:15 EST = 09:15Z. 2026-11-27 is a Friday.
        assert_eq!(
            times(&spec, "2026-11-26T22:00:00Z", 2),
            ["2026-11-27T09:15:00Z", "2026-11-30T09:15:00Z"]
        );
        let every = ScheduleSpec {
            cron_string: vec!["@every 2h/30m".into()],
            ..Default::default()
        };
        let c = canonicalize(&every).unwrap();
        assert_eq!(c.interval[0].interval, secs(7200));
        assert_eq!(c.interval[0].phase, secs(1800));
        assert_eq!(
            times(&every, "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T00:30:00Z", "2026-01-01T02:30:00Z"]
        );
        let hourly = ScheduleSpec {
            cron_string: vec!["@hourly".into()],
            ..Default::default()
        };
        assert_eq!(
            times(&hourly, "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T01:00:00Z"]
        );
    }

    #[test]
    fn bad_specs_are_refused_with_temporal_reasons() {
        let bad = |s: ScheduleSpec| CompiledSpec::new(&s, "").unwrap_err();
        assert_eq!(
            bad(ScheduleSpec {
                cron_string: vec!["* * *".into()],
                ..Default::default()
            }),
            "CronString does not have 5-7 fields"
        );
        assert_eq!(
            bad(ScheduleSpec {
                calendar: vec![CalendarSpec {
                    hour: "25".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            "Hour is not in range [0-23]"
        );
        assert_eq!(
            bad(ScheduleSpec {
                interval: vec![IntervalSpec::default()],
                ..Default::default()
            }),
            "interval is too small"
        );
        assert_eq!(
            bad(ScheduleSpec {
                structured_calendar: vec![StructuredCalendarSpec {
                    hour: vec![Range {
                        start: 30,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            "invalid calendar spec: Hour Start is not in range [0-23]"
        );
        assert_eq!(
            bad(ScheduleSpec {
                timezone_name: "Nowhere/X".into(),
                ..Default::default()
            }),
            "unknown time zone Nowhere/X"
        );
    }

    #[test]
    fn time_zones_across_dst() {
        // 02:30 every day in New York: on 2026-03-08 that local time does not exist.
        let spec = ScheduleSpec {
            calendar: vec![CalendarSpec {
                hour: "2".into(),
                minute: "30".into(),
                ..Default::default()
            }],
            timezone_name: "America/New_York".into(),
            ..Default::default()
        };
        assert_eq!(
            times(&spec, "2026-03-06T12:00:00Z", 3),
            [
                "2026-03-07T07:30:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-10T06:30:00Z"
            ]
        );
        // 01:30 on 2026-11-01 happens twice (EDT, then EST): both match.
        let spec = ScheduleSpec {
            calendar: vec![CalendarSpec {
                hour: "1".into(),
                minute: "30".into(),
                ..Default::default()
            }],
            timezone_name: "America/New_York".into(),
            ..Default::default()
        };
        assert_eq!(
            times(&spec, "2026-10-31T12:00:00Z", 3),
            [
                "2026-11-01T05:30:00Z",
                "2026-11-01T06:30:00Z",
                "2026-11-02T06:30:00Z"
            ]
        );
    }

    #[test]
    fn exclusions_and_start_end_bounds() {
        let spec = ScheduleSpec {
            calendar: vec![CalendarSpec {
                hour: "*".into(),
                ..Default::default()
            }],
            exclude_structured_calendar: vec![
                structured(&CalendarSpec {
                    hour: "1-2".into(),
                    ..Default::default()
                })
                .unwrap(),
            ],
            start_time: Some(ts("2026-01-01T00:00:00Z")),
            end_time: Some(ts("2026-01-01T04:00:00Z")),
            ..Default::default()
        };
        assert_eq!(
            times(&spec, "2025-06-01T00:00:00Z", 10),
            [
                "2026-01-01T00:00:00Z",
                "2026-01-01T03:00:00Z",
                "2026-01-01T04:00:00Z"
            ]
        );
    }

    fn ts(s: &str) -> Timestamp {
        crate::clock::convert::ts(t(s))
    }

    #[test]
    fn jitter_is_deterministic_and_within_bounds() {
        let spec = ScheduleSpec {
            interval: vec![IntervalSpec {
                interval: secs(60),
                phase: None,
            }],
            jitter: secs(3600),
            ..Default::default()
        };
        let a = CompiledSpec::new(&spec, "ns-a").unwrap();
        let b = CompiledSpec::new(&spec, "ns-a").unwrap();
        let mut start = t("2026-01-01T00:00:00Z");
        let mut spread = std::collections::HashSet::new();
        for _ in 0..50 {
            let x = a.next(start).unwrap();
            assert_eq!(Some(x), b.next(start));
            let j = x.next.duration_since(x.nominal).unwrap();
            // Capped by the distance to the following nominal time (60 s), not 1 h.
            assert!(j < Duration::from_secs(60), "{j:?}");
            spread.insert(j.as_millis());
            start = x.nominal;
        }
        assert!(spread.len() > 10, "jitter varies between times");
    }
}
