//! Cron expressions as Metronome accepts them, and next-fire computation (pure logic).
//!
//! Five fields `minute hour day-of-month month day-of-week` plus an optional sixth `year`.
//! Each field is a comma list of `*`, `a`, `a-b`, `*/n`, `a/n` or `a-b/n`; months and days of
//! the week also take names (`JAN`, `MON`). Day of month also takes `?`, `L` (last day),
//! `L-n` (n days before the last day), `nW` (the weekday nearest to day n, not leaving the
//! month) and `LW` (the last weekday). Day of week takes `?`, 0–7 (0 and 7 are Sunday), `nL`
//! (the last such weekday of the month) and `n#k` (the k-th such weekday). When both day of
//! month and day of week are restricted, a day matching either fires (Unix semantics).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A parse error, naming the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DomSpec {
    /// Bit d set: day d (1–31).
    days: u32,
    /// `L`, `L-n`: offsets from the last day of the month.
    last: Vec<u32>,
    /// `nW`.
    nearest_weekday: Vec<u32>,
    /// `LW`.
    last_weekday: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DowSpec {
    /// Bit d set: weekday d (0 = Sunday … 6 = Saturday).
    days: u8,
    /// `nL`: the last weekday n of the month.
    last: Vec<u8>,
    /// `n#k`: the k-th weekday n of the month.
    nth: Vec<(u8, u8)>,
}

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSpec {
    minutes: u64,
    hours: u32,
    dom: DomSpec,
    dom_any: bool,
    months: u16,
    dow: DowSpec,
    dow_any: bool,
    /// Allowed years, `None` for any.
    years: Option<Vec<i32>>,
    text: String,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_num(s: &str, field: &str, names: Option<(&[&str], u32)>) -> Result<u32, CronError> {
    if let Some((names, base)) = names {
        let up = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == up) {
            return Ok(i as u32 + base);
        }
    }
    s.parse::<u32>()
        .map_err(|_| CronError(format!("invalid value '{s}' in the {field} field")))
}

/// Parses a plain field (`*`, lists, ranges, steps) into the list of its values in `min..=max`.
fn parse_plain(
    text: &str,
    field: &str,
    min: u32,
    max: u32,
    names: Option<(&[&str], u32)>,
) -> Result<Vec<u32>, CronError> {
    let mut out = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError(format!("empty list item in the {field} field")));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| CronError(format!("invalid step '{s}' in the {field} field")))?;
                if step == 0 {
                    return Err(CronError(format!("step 0 in the {field} field")));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (parse_num(a, field, names)?, parse_num(b, field, names)?)
        } else {
            let a = parse_num(range, field, names)?;
            // `a/n` means from a to the end of the range.
            (a, if step.is_some() { max } else { a })
        };
        if lo < min || hi > max {
            return Err(CronError(format!(
                "value out of range in the {field} field: '{item}' (allowed {min}-{max})"
            )));
        }
        if lo > hi {
            return Err(CronError(format!(
                "invalid range '{item}' in the {field} field: start after end"
            )));
        }
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            out.push(v);
            v += step;
        }
    }
    Ok(out)
}

fn mask(values: &[u32]) -> u64 {
    values.iter().fold(0u64, |m, v| m | (1u64 << v))
}

fn parse_dom(text: &str) -> Result<DomSpec, CronError> {
    let mut spec = DomSpec::default();
    for item in text.split(',') {
        let up = item.to_ascii_uppercase();
        if up == "L" {
            spec.last.push(0);
        } else if up == "LW" {
            spec.last_weekday = true;
        } else if let Some(off) = up.strip_prefix("L-") {
            let n: u32 = off.parse().map_err(|_| {
                CronError(format!("invalid offset '{item}' in the day-of-month field"))
            })?;
            if n > 30 {
                return Err(CronError(format!(
                    "offset out of range in the day-of-month field: '{item}' (allowed L-0 to L-30)"
                )));
            }
            spec.last.push(n);
        } else if let Some(d) = up.strip_suffix('W') {
            let n: u32 = d.parse().map_err(|_| {
                CronError(format!("invalid value '{item}' in the day-of-month field"))
            })?;
            if !(1..=31).contains(&n) {
                return Err(CronError(format!(
                    "value out of range in the day-of-month field: '{item}' (allowed 1-31)"
                )));
            }
            spec.nearest_weekday.push(n);
        } else {
            for d in parse_plain(item, "day-of-month", 1, 31, None)? {
                spec.days |= 1 << d;
            }
        }
    }
    Ok(spec)
}

fn parse_dow(text: &str) -> Result<DowSpec, CronError> {
    let names = Some((&DAYS[..], 0));
    let mut spec = DowSpec::default();
    for item in text.split(',') {
        let up = item.to_ascii_uppercase();
        let day = |s: &str| -> Result<u8, CronError> {
            let d = parse_num(s, "day-of-week", names)?;
            if d > 7 {
                return Err(CronError(format!(
                    "value out of range in the day-of-week field: '{item}' (allowed 0-7)"
                )));
            }
            Ok((d % 7) as u8)
        };
        if let Some((d, k)) = up.split_once('#') {
            let d = day(d)?;
            let k: u8 = k.parse().map_err(|_| {
                CronError(format!(
                    "invalid occurrence in the day-of-week field: '{item}'"
                ))
            })?;
            if !(1..=5).contains(&k) {
                return Err(CronError(format!(
                    "occurrence out of range in the day-of-week field: '{item}' (allowed #1-#5)"
                )));
            }
            spec.nth.push((d, k));
        } else if up.len() > 1 && up.ends_with('L') {
            spec.last.push(day(&up[..up.len() - 1])?);
        } else if up == "L" {
            // `L` alone in day of week: Saturday (Quartz).
            spec.last.push(6);
        } else {
            for d in parse_plain(&up, "day-of-week", 0, 7, names)? {
                spec.days |= 1 << (d % 7);
            }
        }
    }
    Ok(spec)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The weekday nearest to day `n` of the month, not leaving the month.
fn nearest_weekday(year: i32, month: u32, n: u32) -> Option<u32> {
    let last = days_in_month(year, month);
    let n = n.min(last);
    let d = NaiveDate::from_ymd_opt(year, month, n)?;
    match d.weekday() {
        Weekday::Sat => Some(if n == 1 { 3 } else { n - 1 }),
        Weekday::Sun => Some(if n == last { n - 2 } else { n + 1 }),
        _ => Some(n),
    }
}

impl CronSpec {
    /// Parses a cron expression (5 fields, or 6 with a year).
    pub fn parse(text: &str) -> Result<CronSpec, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 && fields.len() != 6 {
            return Err(CronError(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week) and an optional year, got {}",
                fields.len()
            )));
        }
        let minutes = mask(&parse_plain(fields[0], "minute", 0, 59, None)?);
        let hours = mask(&parse_plain(fields[1], "hour", 0, 23, None)?) as u32;
        let dom_any = fields[2] == "*" || fields[2] == "?";
        let dom = if dom_any {
            DomSpec::default()
        } else {
            parse_dom(fields[2])?
        };
        let months = mask(&parse_plain(
            fields[3],
            "month",
            1,
            12,
            Some((&MONTHS[..], 1)),
        )?) as u16;
        let dow_any = fields[4] == "*" || fields[4] == "?";
        let dow = if dow_any {
            DowSpec::default()
        } else {
            parse_dow(fields[4])?
        };
        let years = match fields.get(5) {
            None | Some(&"*") => None,
            Some(y) => Some(
                parse_plain(y, "year", 1970, 2199, None)?
                    .into_iter()
                    .map(|v| v as i32)
                    .collect(),
            ),
        };
        Ok(CronSpec {
            minutes,
            hours,
            dom,
            dom_any,
            months,
            dow,
            dow_any,
            years,
            text: text.to_string(),
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn dom_matches(&self, d: NaiveDate) -> bool {
        let (y, m, day) = (d.year(), d.month(), d.day());
        if self.dom.days & (1 << day) != 0 {
            return true;
        }
        let last = days_in_month(y, m);
        if self
            .dom
            .last
            .iter()
            .any(|off| last.checked_sub(*off) == Some(day))
        {
            return true;
        }
        if self
            .dom
            .nearest_weekday
            .iter()
            .any(|n| nearest_weekday(y, m, *n) == Some(day))
        {
            return true;
        }
        if self.dom.last_weekday {
            let mut l = last;
            while l > 1 {
                match NaiveDate::from_ymd_opt(y, m, l) {
                    Some(x) if is_weekend(x) => l -= 1,
                    _ => break,
                }
            }
            if l == day {
                return true;
            }
        }
        false
    }

    fn dow_matches(&self, d: NaiveDate) -> bool {
        let wd = d.weekday().num_days_from_sunday() as u8;
        if self.dow.days & (1 << wd) != 0 {
            return true;
        }
        let last = days_in_month(d.year(), d.month());
        if self.dow.last.contains(&wd) && d.day() + 7 > last {
            return true;
        }
        let occurrence = ((d.day() - 1) / 7 + 1) as u8;
        self.dow.nth.contains(&(wd, occurrence))
    }

    /// Whether the date is a firing day (month, year and day rules).
    pub fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        if let Some(ys) = &self.years {
            if !ys.contains(&d.year()) {
                return false;
            }
        }
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => self.dom_matches(d),
            (true, false) => self.dow_matches(d),
            (false, false) => self.dom_matches(d) || self.dow_matches(d),
        }
    }

    /// The first fire time strictly after `after`, in `tz`. Local times that do not exist
    /// (a DST gap) are skipped; ambiguous ones (a DST overlap) fire at the earlier instant.
    /// `None` when nothing fires within the search horizon (28 years, or up to the last
    /// allowed year).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz).naive_local();
        let start: NaiveDateTime =
            local
                .date()
                .and_hms_opt(local.time().hour_of(), local.time().minute_of(), 0)?
                + Duration::minutes(1);
        let mut end_year = start.year() + 28;
        if let Some(ys) = &self.years {
            let max = ys.iter().copied().max()?;
            if max < start.year() {
                return None;
            }
            end_year = end_year.max(max);
        }
        let mut day = start.date();
        while day.year() <= end_year {
            if self.months & (1 << day.month()) == 0
                || self
                    .years
                    .as_ref()
                    .is_some_and(|ys| !ys.contains(&day.year()))
            {
                // Jump to the first day of the next month.
                let (y, m) = if day.month() == 12 {
                    (day.year() + 1, 1)
                } else {
                    (day.year(), day.month() + 1)
                };
                day = NaiveDate::from_ymd_opt(y, m, 1)?;
                continue;
            }
            if self.day_matches(day) {
                for h in 0..24u32 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    for mi in 0..60u32 {
                        if self.minutes & (1u64 << mi) == 0 {
                            continue;
                        }
                        let Some(cand) = day.and_hms_opt(h, mi, 0) else {
                            continue;
                        };
                        if cand < start {
                            continue;
                        }
                        let utc = match tz.from_local_datetime(&cand) {
                            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
                            chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
                            chrono::LocalResult::None => continue,
                        };
                        if utc > after {
                            return Some(utc);
                        }
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

trait HourMinute {
    fn hour_of(&self) -> u32;
    fn minute_of(&self) -> u32;
}

impl HourMinute for chrono::NaiveTime {
    fn hour_of(&self) -> u32 {
        chrono::Timelike::hour(self)
    }
    fn minute_of(&self) -> u32 {
        chrono::Timelike::minute(self)
    }
}

/// Parses an IANA time zone name.
pub fn parse_tz(name: &str) -> Result<Tz, CronError> {
    name.parse::<Tz>().map_err(|_| {
        CronError(format!(
            "unknown time zone '{name}' (expected an IANA name such as 'Europe/Berlin')"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str) -> Option<String> {
        CronSpec::parse(expr)
            .unwrap()
            .next_after(utc(after), Tz::UTC)
            .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
    }

    fn next_tz(expr: &str, after: &str, tz: &str) -> Option<String> {
        CronSpec::parse(expr)
            .unwrap()
            .next_after(utc(after), parse_tz(tz).unwrap())
            .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
    }

    #[test]
    fn every_minute_and_steps() {
        assert_eq!(
            next("* * * * *", "2024-01-01T00:00:30Z").as_deref(),
            Some("2024-01-01T00:01")
        );
        assert_eq!(
            next("*/15 * * * *", "2024-01-01T00:15:00Z").as_deref(),
            Some("2024-01-01T00:30")
        );
        assert_eq!(
            next("5/20 * * * *", "2024-01-01T00:46:00Z").as_deref(),
            Some("2024-01-01T01:05")
        );
        assert_eq!(
            next("0 9-17/4 * * *", "2024-01-01T13:00:00Z").as_deref(),
            Some("2024-01-01T17:00")
        );
        assert_eq!(
            next("0 0 1 JAN,jul *", "2024-02-01T00:00:00Z").as_deref(),
            Some("2024-07-01T00:00")
        );
    }

    #[test]
    fn strictly_after() {
        assert_eq!(
            next("30 2 * * *", "2024-01-01T02:30:00Z").as_deref(),
            Some("2024-01-02T02:30")
        );
    }

    #[test]
    fn day_of_week_zero_and_seven_are_sunday() {
        // 2024-01-07 is a Sunday.
        assert_eq!(
            next("0 0 * * 0", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-07T00:00")
        );
        assert_eq!(
            next("0 0 * * 7", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-07T00:00")
        );
        assert_eq!(
            next("0 0 * * SUN", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-07T00:00")
        );
        assert_eq!(
            next("0 0 * * 5-7", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-05T00:00")
        );
    }

    #[test]
    fn dom_or_dow_when_both_restricted() {
        // The 15th, or any Monday: from Tue 2024-01-02 the next is Mon 01-08, then 01-15.
        assert_eq!(
            next("0 0 15 * 1", "2024-01-02T00:00:00Z").as_deref(),
            Some("2024-01-08T00:00")
        );
        assert_eq!(
            next("0 0 15 * 1", "2024-01-09T00:00:00Z").as_deref(),
            Some("2024-01-15T00:00")
        );
        // `?` leaves the other field alone.
        assert_eq!(
            next("0 0 15 * ?", "2024-01-02T00:00:00Z").as_deref(),
            Some("2024-01-15T00:00")
        );
    }

    #[test]
    fn last_day_and_leap_years() {
        assert_eq!(
            next("0 0 L * *", "2024-02-01T00:00:00Z").as_deref(),
            Some("2024-02-29T00:00")
        );
        assert_eq!(
            next("0 0 L * *", "2023-02-01T00:00:00Z").as_deref(),
            Some("2023-02-28T00:00")
        );
        assert_eq!(
            next("0 0 L-1 * *", "2023-04-01T00:00:00Z").as_deref(),
            Some("2023-04-29T00:00")
        );
        // Feb 29th only in leap years.
        assert_eq!(
            next("0 0 29 2 *", "2024-03-01T00:00:00Z").as_deref(),
            Some("2028-02-29T00:00")
        );
        assert_eq!(
            next("0 12 29 FEB * 2100", "2024-03-01T00:00:00Z"),
            None,
            "2100 is not a leap year"
        );
    }

    #[test]
    fn nearest_weekday_and_last_weekday() {
        // 2024-06-01 is a Saturday: 1W → Mon 06-03. 2024-06-15 is a Saturday: 15W → Fri 14.
        assert_eq!(
            next("0 0 1W * *", "2024-05-31T00:00:00Z").as_deref(),
            Some("2024-06-03T00:00")
        );
        assert_eq!(
            next("0 0 15W * *", "2024-06-04T00:00:00Z").as_deref(),
            Some("2024-06-14T00:00")
        );
        // 2024-06-30 is a Sunday: LW → Fri 06-28.
        assert_eq!(
            next("0 0 LW * *", "2024-06-04T00:00:00Z").as_deref(),
            Some("2024-06-28T00:00")
        );
    }

    #[test]
    fn nth_and_last_weekday_of_month() {
        // Third Friday of January 2024 is the 19th; last Friday is the 26th.
        assert_eq!(
            next("0 0 * * 5#3", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-19T00:00")
        );
        assert_eq!(
            next("0 0 * * 5L", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-26T00:00")
        );
        assert_eq!(
            next("0 0 * * FRIL", "2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-26T00:00")
        );
    }

    #[test]
    fn year_field() {
        assert_eq!(
            next("0 0 1 1 * 2030", "2024-03-01T00:00:00Z").as_deref(),
            Some("2030-01-01T00:00")
        );
        assert_eq!(next("0 0 1 1 * 2020", "2024-03-01T00:00:00Z"), None);
    }

    #[test]
    fn impossible_dates() {
        assert_eq!(next("0 0 31 2 *", "2024-01-01T00:00:00Z"), None);
        assert_eq!(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), None);
        assert_eq!(next("0 0 31 4,6,9,11 *", "2024-01-01T00:00:00Z"), None);
        // ...but an OR with a day of week makes it possible.
        assert!(next("0 0 31 2 1", "2024-01-01T00:00:00Z").is_some());
    }

    #[test]
    fn time_zones_and_dst() {
        // 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
        assert_eq!(
            next_tz("0 9 * * *", "2024-01-10T12:00:00Z", "Europe/Berlin").as_deref(),
            Some("2024-01-11T08:00")
        );
        assert_eq!(
            next_tz("0 9 * * *", "2024-07-10T12:00:00Z", "Europe/Berlin").as_deref(),
            Some("2024-07-11T07:00")
        );
        // 02:30 does not exist in New York on 2024-03-10 (spring forward): skipped.
        assert_eq!(
            next_tz("30 2 * * *", "2024-03-09T12:00:00Z", "America/New_York").as_deref(),
            Some("2024-03-11T06:30")
        );
        // 01:30 happens twice on 2024-11-03: fires once, at the first (EDT, 05:30 UTC).
        assert_eq!(
            next_tz("30 1 * * *", "2024-11-02T12:00:00Z", "America/New_York").as_deref(),
            Some("2024-11-03T05:30")
        );
        assert_eq!(
            next_tz("30 1 * * *", "2024-11-03T05:30:00Z", "America/New_York").as_deref(),
            Some("2024-11-04T06:30")
        );
        assert!(parse_tz("Mars/Olympus").is_err());
    }

    #[test]
    fn malformed_expressions() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "1,,2 * * * *",
            "* * 32W * *",
            "* * * * 5#6",
            "* * * * 9L",
            "* * * * * 1800",
            "* * L-40 * *",
        ] {
            assert!(CronSpec::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
