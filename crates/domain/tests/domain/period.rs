use trellis_domain::{Period, PeriodKind, ValueError};

use crate::support::{date, parse};

#[test]
fn periods_display_as_they_are_parsed() {
    for text in [
        "2026-W05", "2026-W01", "2026-W53", "2020-W53", "2026-03", "2026-12", "2026-Q1", "2026-Q4",
    ] {
        assert_eq!(parse::<Period>(text).to_string(), text);
    }
}

#[test]
fn lowercase_week_and_quarter_letters_are_accepted_and_shown_uppercase() {
    assert_eq!(parse::<Period>("2026-w05").to_string(), "2026-W05");
    assert_eq!(parse::<Period>("2026-q2").to_string(), "2026-Q2");
}

#[test]
fn invalid_periods_are_rejected_with_the_reason() {
    let cases = [
        ("2026-13", "months run from 01 to 12"),
        ("2026-00", "months run from 01 to 12"),
        ("2026-Q5", "quarters run from Q1 to Q4"),
        ("2026-Q0", "quarters run from Q1 to Q4"),
        (
            "2026-W54",
            "that year has no such ISO week (weeks run from W01 to W52, or W53 in long years)",
        ),
        (
            "2025-W53",
            "that year has no such ISO week (weeks run from W01 to W52, or W53 in long years)",
        ),
        (
            "2026-W00",
            "that year has no such ISO week (weeks run from W01 to W52, or W53 in long years)",
        ),
    ];
    for (input, reason) in cases {
        assert_eq!(
            input.parse::<Period>(),
            Err(ValueError::InvalidPeriod {
                input: input.to_owned(),
                reason
            }),
            "{input}"
        );
    }
    let shape = "expected a four-digit year, a dash, then a week (W01–W53), a month (01–12) or a quarter (Q1–Q4)";
    for input in [
        "2026-02-30",
        "2026-03-01",
        "26-03",
        "2026/03",
        "",
        "2026-3",
        "2026-W5",
        "abcd-01",
        "2026-M03",
    ] {
        assert_eq!(
            input.parse::<Period>(),
            Err(ValueError::InvalidPeriod {
                input: input.to_owned(),
                reason: shape
            }),
            "{input}"
        );
    }
}

#[test]
fn the_error_message_shows_how_to_write_a_period() {
    let error = "2026-13".parse::<Period>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "“2026-13” is not a period: months run from 01 to 12. \
         Write a week as 2026-W05, a month as 2026-03, a quarter as 2026-Q1."
    );
}

#[test]
fn an_iso_week_runs_monday_to_sunday_and_may_start_in_the_previous_year() {
    let week = parse::<Period>("2026-W01");
    assert_eq!(week.kind(), PeriodKind::Week);
    assert_eq!(week.start(), date("2025-12-29"));
    assert_eq!(week.end(), date("2026-01-04"));
    assert_eq!(parse::<Period>("2026-W05").start(), date("2026-01-26"));
}

#[test]
fn a_month_ends_on_its_last_day_including_leap_years() {
    assert_eq!(parse::<Period>("2024-02").end(), date("2024-02-29"));
    assert_eq!(parse::<Period>("2026-02").end(), date("2026-02-28"));
    assert_eq!(parse::<Period>("2026-03").start(), date("2026-03-01"));
    assert_eq!(parse::<Period>("2026-03").end(), date("2026-03-31"));
}

#[test]
fn a_quarter_spans_three_months() {
    let q2 = parse::<Period>("2026-Q2");
    assert_eq!(
        (q2.start(), q2.end()),
        (date("2026-04-01"), date("2026-06-30"))
    );
    let q4 = parse::<Period>("2026-Q4");
    assert_eq!(
        (q4.start(), q4.end()),
        (date("2026-10-01"), date("2026-12-31"))
    );
}

#[test]
fn contains_includes_both_ends_and_nothing_outside() {
    let march = parse::<Period>("2026-03");
    assert!(march.contains(date("2026-03-01")));
    assert!(march.contains(date("2026-03-31")));
    assert!(!march.contains(date("2026-02-28")));
    assert!(!march.contains(date("2026-04-01")));
}

#[test]
fn next_moves_to_the_following_period_across_year_ends() {
    let next = |p: &str| parse::<Period>(p).next().to_string();
    assert_eq!(next("2026-W05"), "2026-W06");
    assert_eq!(next("2026-W53"), "2027-W01");
    assert_eq!(next("2026-12"), "2027-01");
    assert_eq!(next("2026-Q4"), "2027-Q1");
}

#[test]
fn containing_finds_the_period_of_a_date() {
    let containing = |kind, d| Period::containing(kind, date(d)).to_string();
    assert_eq!(containing(PeriodKind::Week, "2026-01-01"), "2026-W01");
    assert_eq!(containing(PeriodKind::Week, "2025-12-29"), "2026-W01");
    assert_eq!(containing(PeriodKind::Week, "2027-01-03"), "2026-W53");
    assert_eq!(containing(PeriodKind::Month, "2026-05-17"), "2026-05");
    assert_eq!(containing(PeriodKind::Quarter, "2026-05-17"), "2026-Q2");
    assert_eq!(containing(PeriodKind::Quarter, "2026-12-31"), "2026-Q4");
}

#[test]
fn ordinal_since_counts_the_start_period_as_one() {
    let start = date("2026-01-20");
    assert_eq!(parse::<Period>("2026-01").ordinal_since(start), Some(1));
    assert_eq!(parse::<Period>("2026-03").ordinal_since(start), Some(3));
    assert_eq!(parse::<Period>("2025-12").ordinal_since(start), None);
    assert_eq!(parse::<Period>("2026-W04").ordinal_since(start), Some(1));
    assert_eq!(parse::<Period>("2026-W06").ordinal_since(start), Some(3));
    assert_eq!(parse::<Period>("2027-Q1").ordinal_since(start), Some(5));
}

#[test]
fn periods_serialize_as_their_display_string() {
    let period = parse::<Period>("2026-W05");
    assert_eq!(
        serde_json::to_string(&period).ok().as_deref(),
        Some("\"2026-W05\"")
    );
    assert_eq!(
        serde_json::from_str::<Period>("\"2026-Q1\"").ok(),
        Some(parse("2026-Q1"))
    );
    assert!(serde_json::from_str::<Period>("\"2026-13\"").is_err());
}
