//! Periods a standard's target applies to: an ISO week, a calendar month or a quarter.
//!
//! Written as `2026-W05` (ISO week, Monday to Sunday), `2026-03` or `2026-Q1`.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::values::ValueError;

/// How long a period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar quarter (January, April, July, October).
    Quarter,
}

impl PeriodKind {
    /// "weekly", "monthly" or "quarterly".
    pub fn adverb(self) -> &'static str {
        match self {
            PeriodKind::Week => "weekly",
            PeriodKind::Month => "monthly",
            PeriodKind::Quarter => "quarterly",
        }
    }

    /// How a period of this kind is written, for a person to copy:
    /// `2026-W05`, `2026-03` or `2026-Q1`.
    pub fn example(self) -> &'static str {
        match self {
            PeriodKind::Week => "2026-W05",
            PeriodKind::Month => "2026-03",
            PeriodKind::Quarter => "2026-Q1",
        }
    }
}

/// One week, month or quarter. Always aligned: `start` is a Monday, a first of
/// the month, or the first day of a quarter.
///
/// Ordered by kind, then start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    kind: PeriodKind,
    start: NaiveDate,
}

impl Period {
    /// The period of `kind` that contains `date`.
    pub fn containing(kind: PeriodKind, date: NaiveDate) -> Period {
        let start = match kind {
            PeriodKind::Week => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
            PeriodKind::Month => first_of(date.year(), date.month()),
            PeriodKind::Quarter => first_of(date.year(), (date.month() - 1) / 3 * 3 + 1),
        };
        Period { kind, start }
    }

    /// Week, month or quarter.
    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    /// The first day of the period.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The last day of the period (inclusive).
    pub fn end(&self) -> NaiveDate {
        self.next().start - Days::new(1)
    }

    /// Whether `date` falls within the period.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end()
    }

    /// The period of the same kind that follows this one.
    ///
    /// Panics only beyond the calendar chrono supports (around the year 262,000).
    pub fn next(&self) -> Period {
        let start = match self.kind {
            PeriodKind::Week => self.start.checked_add_days(Days::new(7)),
            PeriodKind::Month => self.start.checked_add_months(Months::new(1)),
            PeriodKind::Quarter => self.start.checked_add_months(Months::new(3)),
        }
        .expect("period within chrono's calendar");
        Period {
            kind: self.kind,
            start,
        }
    }

    /// Which period this is for someone who started on `start_date`, counting the
    /// period that contains `start_date` as 1. `None` when this period ends before
    /// `start_date`. This is the `period_index` a ramp step refers to.
    pub fn ordinal_since(&self, start_date: NaiveDate) -> Option<u32> {
        let first = Period::containing(self.kind, start_date);
        if self.start < first.start {
            return None;
        }
        let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
        let steps = match self.kind {
            PeriodKind::Week => (self.start - first.start).num_days() / 7,
            PeriodKind::Month => months(self.start) - months(first.start),
            PeriodKind::Quarter => (months(self.start) - months(first.start)) / 3,
        };
        u32::try_from(steps + 1).ok()
    }
}

fn first_of(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month always exists")
}

impl FromStr for Period {
    type Err = ValueError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| ValueError::InvalidPeriod {
            input: input.to_owned(),
            reason,
        };
        let shape = "expected a four-digit year, a dash, then a week (W01–W53), a month (01–12) or a quarter (Q1–Q4)";
        let text = input.trim();
        let (year, rest) = text.split_once('-').ok_or_else(|| invalid(shape))?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(shape));
        }
        let year: i32 = year.parse().map_err(|_| invalid(shape))?;
        let two_digits = |s: &str| -> Option<u32> {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        if let Some(week) = rest.strip_prefix(['W', 'w']) {
            let week = two_digits(week).ok_or_else(|| invalid(shape))?;
            let start = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
                .filter(|_| week >= 1)
                .ok_or_else(|| invalid("that year has no such ISO week (weeks run from W01 to W52, or W53 in long years)"))?;
            Ok(Period {
                kind: PeriodKind::Week,
                start,
            })
        } else if let Some(quarter) = rest.strip_prefix(['Q', 'q']) {
            match quarter {
                "1" | "2" | "3" | "4" => {
                    let quarter: u32 = quarter.parse().map_err(|_| invalid(shape))?;
                    Ok(Period {
                        kind: PeriodKind::Quarter,
                        start: first_of(year, (quarter - 1) * 3 + 1),
                    })
                }
                _ => Err(invalid("quarters run from Q1 to Q4")),
            }
        } else {
            let month = two_digits(rest).ok_or_else(|| invalid(shape))?;
            if !(1..=12).contains(&month) {
                return Err(invalid("months run from 01 to 12"));
            }
            Ok(Period {
                kind: PeriodKind::Month,
                start: first_of(year, month),
            })
        }
    }
}

impl TryFrom<&str> for Period {
    type Error = ValueError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        input.parse()
    }
}

impl TryFrom<String> for Period {
    type Error = ValueError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        input.parse()
    }
}

impl From<Period> for String {
    fn from(period: Period) -> Self {
        period.to_string()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Week => {
                let week = self.start.iso_week();
                write!(f, "{:04}-W{:02}", week.year(), week.week())
            }
            PeriodKind::Month => write!(f, "{:04}-{:02}", self.start.year(), self.start.month()),
            PeriodKind::Quarter => write!(
                f,
                "{:04}-Q{}",
                self.start.year(),
                self.start.month0() / 3 + 1
            ),
        }
    }
}
