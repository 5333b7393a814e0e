//! Value newtypes, parsed at the edge: once you hold one, it is valid.
//!
//! Every type here deserializes through the same check as its `TryFrom`, so a
//! malformed stored payload fails to decode instead of producing an invalid value.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a value given at the edge is not acceptable, in the user's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "“{input}” is not a valid {what}. Use the id exactly as Trellis gave it, e.g. 0190a5b2-7c3e-7d41-9a2b-3c4d5e6f7a8b."
    )]
    InvalidId { what: &'static str, input: String },
    #[error(
        "A skill level must be a whole number from 1 to 5, but {value} was given. Pick the rubric level that best matches the evidence."
    )]
    SkillLevelOutOfRange { value: String },
    #[error("The {what} is empty. Write at least a few words.")]
    EmptyText { what: &'static str },
    /// A one-line value (a name, a role, a unit) left empty: "a few words"
    /// does not fit "SDR".
    #[error("The {what} is empty: fill it in.")]
    EmptyLine { what: &'static str },
    #[error("The {what} is {actual} characters long; the limit is {max}. Shorten it.")]
    TextTooLong {
        what: &'static str,
        max: usize,
        actual: usize,
    },
    #[error("The {what} contains a line break or control character. Write it on one line.")]
    NotOneLine { what: &'static str },
    #[error(
        "“{input}” is not a metric name. Use lowercase letters, digits and single underscores, starting with a letter, e.g. calls_made or discovery_score."
    )]
    InvalidMetricName { input: String },
    #[error(
        "“{input}” is not a period: {reason}. Write a week as 2026-W05, a month as 2026-03, a quarter as 2026-Q1."
    )]
    InvalidPeriod { input: String, reason: &'static str },
    #[error(
        "A target must be a number greater than zero, but {value} was given. Set the level a rep is expected to reach."
    )]
    TargetNotPositive { value: f64 },
    #[error(
        "A measured value must be a number of zero or more, but {value} was given. Enter what the rep actually achieved."
    )]
    MetricValueInvalid { value: f64 },
    #[error("A rubric needs exactly 5 level descriptions (levels 1 to 5), but {count} were given.")]
    RubricNotFiveLevels { count: usize },
    #[error(
        "“{input}” is not a SHA-256 digest. Give the 64 lowercase hexadecimal characters of the packet's digest."
    )]
    InvalidSha256 { input: String },
}

impl ValueError {
    /// The same error about a value called `what` in its sentence: a
    /// standard's unit is checked as a [`Name`], and its error should not
    /// read "The name is empty" beside the unit.
    pub fn about(self, what: &'static str) -> ValueError {
        match self {
            ValueError::EmptyText { .. } => ValueError::EmptyText { what },
            ValueError::EmptyLine { .. } => ValueError::EmptyLine { what },
            ValueError::TextTooLong { max, actual, .. } => {
                ValueError::TextTooLong { what, max, actual }
            }
            ValueError::NotOneLine { .. } => ValueError::NotOneLine { what },
            other => other,
        }
    }
}

/// Trims `input` and checks it is non-empty, at most `max` characters, and
/// (when `one_line`) free of control characters; returns the trimmed text.
fn checked_text<'a>(
    input: &'a str,
    what: &'static str,
    max: usize,
    one_line: bool,
) -> Result<&'a str, ValueError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(if one_line {
            ValueError::EmptyLine { what }
        } else {
            ValueError::EmptyText { what }
        });
    }
    let actual = trimmed.chars().count();
    if actual > max {
        return Err(ValueError::TextTooLong { what, max, actual });
    }
    if one_line && trimmed.chars().any(char::is_control) {
        return Err(ValueError::NotOneLine { what });
    }
    Ok(trimmed)
}

/// Defines a string newtype checked by [`checked_text`].
macro_rules! text_newtype {
    ($(#[$doc:meta])* $Name:ident, what = $what:literal, max = $max:expr, one_line = $one_line:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $Name(String);

        impl $Name {
            /// The longest accepted text, in characters.
            pub const MAX_CHARS: usize = $max;

            /// The text, trimmed.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $Name {
            type Error = ValueError;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                checked_text(input, $what, $max, $one_line).map(|text| Self(text.to_owned()))
            }
        }

        impl TryFrom<String> for $Name {
            type Error = ValueError;

            /// Keeps `input`'s allocation when it needs no trimming (as
            /// stored payloads never do).
            fn try_from(input: String) -> Result<Self, Self::Error> {
                let trimmed = checked_text(&input, $what, $max, $one_line)?.len();
                if trimmed == input.len() {
                    Ok(Self(input))
                } else {
                    Self::try_from(input.as_str())
                }
            }
        }

        impl FromStr for $Name {
            type Err = ValueError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::try_from(input)
            }
        }

        impl From<$Name> for String {
            fn from(value: $Name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $Name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $Name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// Free text: trimmed, non-empty, at most 10,000 characters; may span lines.
    NonEmptyText, what = "text", max = 10_000, one_line = false
);
text_newtype!(
    /// A person's name: trimmed, non-empty, one line, at most 200 characters.
    PersonName, what = "name", max = 200, one_line = true
);
text_newtype!(
    /// The name of a thing (team, competency, standard, unit, training): one line, at most 200 characters.
    Name, what = "name", max = 200, one_line = true
);
text_newtype!(
    /// A rep's role, e.g. `SDR` or `AE`: one line, at most 50 characters.
    Role, what = "role", max = 50, one_line = true
);

/// Whether two names of things of one kind (teams, competencies) are one
/// name to a reader: the same words, whatever their case and the space
/// around and between them (a page shows "Northside  SDRs" as "Northside
/// SDRs"). Such a thing may not take a name another has
/// ([`crate::TeamCommand`]'s and [`crate::CompetencyCommand`]'s `name_taken`).
pub fn same_name(a: &str, b: &str) -> bool {
    name_key(a) == name_key(b)
}

/// A name as [`same_name`] compares it: its words, lowercase, one space
/// apart. Names with equal keys are one name, so a key looks a name up
/// (a CSV file's "aisha  khan" is the people list's Aisha Khan).
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name, as written there, of the first of `others` (each with its
/// id) but `own` that is one name with `name` ([`same_name`]): what a
/// command's `name_taken` holds.
pub fn taken_by<K: PartialEq>(
    others: impl IntoIterator<Item = (K, Name)>,
    own: &K,
    name: &Name,
) -> Option<Name> {
    others
        .into_iter()
        .find(|(id, other)| id != own && same_name(other.as_ref(), name.as_ref()))
        .map(|(_, other)| other)
}

impl PersonName {
    /// What a person's name reads as once their personal data is erased.
    pub fn erased() -> PersonName {
        PersonName(crate::personal::ERASED_NAME.to_owned())
    }
}

/// A note a leader or rep writes (feedback, evidence, coaching notes, reasons).
pub type Note = NonEmptyText;

/// A rubric level from 1 (lowest) to 5 (highest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct SkillLevel(u8);

impl SkillLevel {
    /// The lowest level.
    pub const MIN: SkillLevel = SkillLevel(1);
    /// The highest level.
    pub const MAX: SkillLevel = SkillLevel(5);

    /// The level as a number from 1 to 5.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for SkillLevel {
    type Error = ValueError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match u8::try_from(value) {
            Ok(level @ 1..=5) => Ok(Self(level)),
            _ => Err(ValueError::SkillLevelOutOfRange {
                value: value.to_string(),
            }),
        }
    }
}

impl TryFrom<u8> for SkillLevel {
    type Error = ValueError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::try_from(i64::from(value))
    }
}

impl FromStr for SkillLevel {
    type Err = ValueError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let out_of_range = || ValueError::SkillLevelOutOfRange {
            value: format!("“{}”", input.trim()),
        };
        input
            .trim()
            .parse::<i64>()
            .map_err(|_| out_of_range())
            .and_then(Self::try_from)
    }
}

impl From<SkillLevel> for u8 {
    fn from(level: SkillLevel) -> Self {
        level.0
    }
}

impl fmt::Display for SkillLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of a metric: a lowercase slug such as `calls_made` or `discovery_score`.
///
/// Starts with a letter; then lowercase letters, digits and single underscores;
/// does not end with an underscore; at most 64 characters.
///
/// Shared, not copied, when cloned: a handful of names label the millions
/// of measurements that read models keep in memory, so a holder can keep
/// one copy of each ([`MetricName::same_as`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricName(Arc<str>);

impl MetricName {
    /// The longest accepted name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` and `other` share one copy of the name.
    pub fn same_as(&self, other: &MetricName) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl TryFrom<&str> for MetricName {
    type Error = ValueError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        let slug = input.trim();
        let well_formed = slug.starts_with(|c: char| c.is_ascii_lowercase())
            && slug.len() <= Self::MAX_CHARS
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !slug.ends_with('_')
            && !slug.contains("__");
        if well_formed {
            Ok(Self(Arc::from(slug)))
        } else {
            Err(ValueError::InvalidMetricName {
                input: input.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for MetricName {
    type Error = ValueError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::try_from(input.as_str())
    }
}

impl FromStr for MetricName {
    type Err = ValueError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::try_from(input)
    }
}

impl From<MetricName> for String {
    fn from(value: MetricName) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A standard's target per period: finite and greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Target(f64);

impl Target {
    /// A target from an already positive computation, kept within `f64`'s
    /// positive finite range (so a tiny target scaled by a ramp stays above zero).
    pub(crate) fn clamped(value: f64) -> Self {
        Self(value.clamp(f64::MIN_POSITIVE, f64::MAX))
    }

    /// The target as a number.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Target {
    type Error = ValueError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        if value.is_finite() && value > 0.0 {
            Ok(Self(value))
        } else {
            Err(ValueError::TargetNotPositive { value })
        }
    }
}

impl From<Target> for f64 {
    fn from(target: Target) -> Self {
        target.0
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How many years back a rep's start date may be: further is a mistyped
/// year (1899), not a career.
pub const MAX_YEARS_BACK: u32 = 60;

/// How many times the largest target of a metric's standards a measurement
/// may be (or this many, for targets below 1) before it is taken for a typo.
pub const PLAUSIBLE_TIMES_TARGET: f64 = 100.0;

/// Whether `value` is a plausible measurement of a metric whose standards'
/// largest target is `largest_target`: at most [`PLAUSIBLE_TIMES_TARGET`]
/// times it, or that many when it is below 1. The domain refuses any other
/// (`Rejection::MeasurementImplausible`); the write side's kept catalogue
/// reads the standards again before it would.
pub fn plausible(value: f64, largest_target: f64) -> bool {
    value <= PLAUSIBLE_TIMES_TARGET * largest_target.max(1.0)
}

/// A measured value of a metric: finite and zero or more.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct MetricValue(f64);

impl MetricValue {
    /// The value as a number.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for MetricValue {
    type Error = ValueError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        if value.is_finite() && value >= 0.0 {
            // Normalise -0.0 so that equal values serialize identically.
            Ok(Self(value + 0.0))
        } else {
            Err(ValueError::MetricValueInvalid { value })
        }
    }
}

impl From<MetricValue> for f64 {
    fn from(value: MetricValue) -> Self {
        value.0
    }
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The five level descriptions of a competency, level 1 first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<NonEmptyText>", into = "Vec<NonEmptyText>")]
pub struct Rubric([NonEmptyText; 5]);

impl Rubric {
    /// Builds a rubric from its five level descriptions, level 1 first.
    pub fn new(levels: [NonEmptyText; 5]) -> Self {
        Self(levels)
    }

    /// The description of one level.
    pub fn describe(&self, level: SkillLevel) -> &NonEmptyText {
        &self.0[usize::from(level.get() - 1)]
    }

    /// All five descriptions, level 1 first.
    pub fn levels(&self) -> &[NonEmptyText; 5] {
        &self.0
    }
}

impl TryFrom<Vec<NonEmptyText>> for Rubric {
    type Error = ValueError;

    fn try_from(levels: Vec<NonEmptyText>) -> Result<Self, Self::Error> {
        let count = levels.len();
        <[NonEmptyText; 5]>::try_from(levels)
            .map(Self)
            .map_err(|_| ValueError::RubricNotFiveLevels { count })
    }
}

impl From<Rubric> for Vec<NonEmptyText> {
    fn from(rubric: Rubric) -> Self {
        rubric.0.into()
    }
}

/// A SHA-256 digest as 64 lowercase hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// The 64 hexadecimal characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Sha256Hex {
    type Error = ValueError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        let hex = input.trim();
        if hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        {
            Ok(Self(hex.to_owned()))
        } else {
            Err(ValueError::InvalidSha256 {
                input: input.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = ValueError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::try_from(input.as_str())
    }
}

impl From<Sha256Hex> for String {
    fn from(value: Sha256Hex) -> Self {
        value.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
