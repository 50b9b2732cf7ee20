//! Temporal Schedules, the functional core: [`spec`] evaluates schedule specs (intervals,
//! calendars, cron strings, time zones, exclusions, jitter) and [`machine`] decides, from the
//! stored record and an injected `now`, what a schedule starts when. No IO here; the shell is
//! `engine::schedules`.

pub mod machine;
pub mod spec;

pub use machine::{BufferedStart, Decision, Machine, ScheduleRecord};
pub use spec::{CompiledSpec, NextTime};
