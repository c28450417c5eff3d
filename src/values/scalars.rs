//! Column values that are stored as portable text or timestamps and surface in GraphQL as-is.
//!
//! Every type here implements `FromSql` once for any backend that reads `Text`/`Timestamp`
//! (`Timestamp` has a fast path of its own on SQLite), and `ToSql` per backend, because diesel's
//! output buffers differ between SQLite and PostgreSQL.

use std::fmt;
use std::io::Write;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types;
use diesel::sqlite::Sqlite;
use diesel::{AsExpression, FromSqlRow};
use uuid::Uuid;

/// A record identifier: a UUIDv7, so ids sort by creation time.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    AsExpression,
    FromSqlRow,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
#[diesel(sql_type = sql_types::Text)]
pub struct Id(pub Uuid);

impl Id {
    pub fn new() -> Self {
        Id(Uuid::now_v7())
    }
}

impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Id)
    }
}

impl<DB: Backend> FromSql<sql_types::Text, DB> for Id
where
    String: FromSql<sql_types::Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(String::from_sql(bytes)?.parse()?)
    }
}

impl ToSql<sql_types::Text, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(
            self.0
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .to_owned(),
        );
        Ok(IsNull::No)
    }
}

impl ToSql<sql_types::Text, Pg> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(
            self.0
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        )?;
        Ok(IsNull::No)
    }
}

/// Ids are `ID` in GraphQL (what Relay's `Node` expects) and always hold a UUID.
#[Scalar(name = "ID")]
impl ScalarType for Id {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map_err(|_| InputValueError::custom(format!("`{s}` is not a valid id (a UUID)"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A point in time, UTC, kept to microseconds: PostgreSQL stores microseconds and SQLite
/// whatever it is given, so truncating here keeps ordering identical on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = sql_types::Timestamp)]
pub struct Timestamp(pub NaiveDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp::from(Utc::now())
    }

    /// An RFC 3339 date-time in any offset, as UTC; `None` when the text is not one.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp::from(t.with_timezone(&Utc)))
    }

    pub fn to_utc(self) -> DateTime<Utc> {
        self.0.and_utc()
    }

    /// RFC 3339 in UTC (`…Z`), with as many fraction digits as it has: how both APIs write
    /// a time.
    pub fn rfc3339(self) -> String {
        self.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t.naive_utc().trunc_subsecs(6))
    }
}

impl FromSql<sql_types::Timestamp, Pg> for Timestamp {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<sql_types::Timestamp, Pg>>::from_sql(bytes).map(Timestamp)
    }
}

/// SQLite keeps a timestamp as the text diesel wrote (`2026-11-22 10:00:00.123456`). diesel
/// reads it back through chrono, which interprets its format string anew for every value: ~4 %
/// of the model list's time. That one form is read directly; anything else still goes through
/// diesel.
impl FromSql<sql_types::Timestamp, Sqlite> for Timestamp {
    fn from_sql(mut value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        if let Some(t) = parse_sqlite_timestamp(value.read_text()) {
            return Ok(Timestamp(t));
        }
        <NaiveDateTime as FromSql<sql_types::Timestamp, Sqlite>>::from_sql(value).map(Timestamp)
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to nine digits; `None` for any
/// other text.
fn parse_sqlite_timestamp(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b.len() == 20 || b.len() > 29 {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match b.get(19) {
        None => 0,
        Some(b'.') => number(20..b.len())? * 10u32.pow(29 - b.len() as u32),
        Some(_) => return None,
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?;
    let time = chrono::NaiveTime::from_hms_nano_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        nanos,
    )?;
    Some(date.and_time(time))
}

/// Written in the text diesel writes (`%F %T%.f`), which every stored timestamp already has
/// and which SQLite compares as text, but without interpreting chrono's format string per value:
/// ingest binds a timestamp for every event. Years outside 0–9999 and leap seconds, which that
/// format writes differently, still go through diesel.
impl ToSql<sql_types::Timestamp, Sqlite> for Timestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        match format_sqlite_timestamp(&self.0) {
            Some(text) => {
                out.set_value(text);
                Ok(IsNull::No)
            }
            None => <NaiveDateTime as ToSql<sql_types::Timestamp, Sqlite>>::to_sql(&self.0, out),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` and, unless the fraction is zero, a dot and 3, 6 or 9 digits (as
/// few as hold it exactly); `None` where chrono's `%F %T%.f` writes something else.
fn format_sqlite_timestamp(t: &NaiveDateTime) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let (fraction, digits) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    let mut text = [0u8; 29];
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, digits, fraction);
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        text[at] = separator;
    }
    let len = if digits == 0 { 19 } else { 20 + digits };
    // Only ASCII digits and separators were written.
    String::from_utf8(text[..len].to_vec()).ok()
}

impl ToSql<sql_types::Timestamp, Pg> for Timestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <NaiveDateTime as ToSql<sql_types::Timestamp, Pg>>::to_sql(&self.0, out)
    }
}

/// RFC 3339 in UTC (`2026-11-22T10:00:00.123456Z`).
#[Scalar(name = "DateTime")]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Timestamp::parse_rfc3339(s).ok_or_else(|| {
                InputValueError::custom(format!("`{s}` is not an RFC 3339 date-time"))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.rfc3339())
    }
}

/// Free-form JSON (schemas, metrics, metadata), stored as text.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = sql_types::Text)]
pub struct JsonText(pub serde_json::Value);

impl serde::Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<DB: Backend> FromSql<sql_types::Text, DB> for JsonText
where
    String: FromSql<sql_types::Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(JsonText(serde_json::from_str(&String::from_sql(bytes)?)?))
    }
}

impl ToSql<sql_types::Text, Sqlite> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.to_string());
        Ok(IsNull::No)
    }
}

impl ToSql<sql_types::Text, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        serde_json::to_writer(&mut *out, &self.0)?;
        Ok(IsNull::No)
    }
}

#[Scalar(name = "JSON")]
impl ScalarType for JsonText {
    fn parse(value: Value) -> InputValueResult<Self> {
        value
            .into_json()
            .map(JsonText)
            .map_err(|e| InputValueError::custom(format!("not valid JSON: {e}")))
    }

    fn to_value(&self) -> Value {
        Value::from_json(self.0.clone()).unwrap_or(Value::Null)
    }
}

/// A byte count or other integer that can pass 2^31 (GraphQL `Int` is 32-bit). Answered as a
/// JSON number: exact in JavaScript up to 2^53 bytes (8 PiB), far beyond any artifact. Accepted as
/// a number or a decimal string.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, AsExpression, FromSqlRow,
)]
#[diesel(sql_type = sql_types::BigInt)]
pub struct BigInt(pub i64);

impl<DB: Backend> FromSql<sql_types::BigInt, DB> for BigInt
where
    i64: FromSql<sql_types::BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        i64::from_sql(bytes).map(BigInt)
    }
}

impl ToSql<sql_types::BigInt, Sqlite> for BigInt {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <i64 as ToSql<sql_types::BigInt, Sqlite>>::to_sql(&self.0, out)
    }
}

impl ToSql<sql_types::BigInt, Pg> for BigInt {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <i64 as ToSql<sql_types::BigInt, Pg>>::to_sql(&self.0, out)
    }
}

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(BigInt)
                .ok_or_else(|| InputValueError::custom(format!("`{n}` is not a whole number"))),
            Value::String(s) => s
                .parse()
                .map(BigInt)
                .map_err(|_| InputValueError::custom(format!("`{s}` is not a whole number"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// An enum whose variants are stored as their GraphQL names (SCREAMING_CASE text).
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(async_graphql::Enum, diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name { $($(#[$vmeta])* #[graphql(name = $text)] $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::values::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::values::UnknownValue(other.to_owned())),
                }
            }
        }

        impl<DB: diesel::backend::Backend> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                Ok(String::from_sql(bytes)?.parse()?)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>) -> diesel::serialize::Result {
                out.set_value(self.as_str());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
            }
        }
    };
}
pub(crate) use text_enum;

/// A stored enum value this build does not know (a newer schema, or a hand-edited row).
#[derive(Debug, thiserror::Error)]
#[error("unknown stored value `{0}`")]
pub struct UnknownValue(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_timestamps_read_as_chrono_reads_them() {
        for text in [
            "2026-11-22 10:00:00",
            "2026-11-22 10:00:00.1",
            "2026-11-22 10:00:00.123456",
            "2026-11-22 23:59:59.999999999",
            "1970-01-01 00:00:00.000001",
            "2024-02-29 12:34:56.5",
        ] {
            let expected = NaiveDateTime::parse_from_str(text, "%F %T%.f").unwrap();
            assert_eq!(parse_sqlite_timestamp(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn sqlite_timestamps_are_written_as_chrono_writes_them() {
        let base = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(9, 5, 7)
            .unwrap();
        for nanos in [
            0,
            1,
            999_999_999,
            500_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            1_000,
            100_000,
        ] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            assert_eq!(
                format_sqlite_timestamp(&t).as_deref(),
                Some(t.format("%F %T%.f").to_string().as_str())
            );
        }
        for (y, m, d) in [(0, 1, 1), (9999, 12, 31), (1970, 1, 1), (2024, 2, 29)] {
            let t = chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_micro_opt(23, 59, 59, 42)
                .unwrap();
            assert_eq!(
                format_sqlite_timestamp(&t).unwrap(),
                t.format("%F %T%.f").to_string()
            );
        }
        let far = chrono::NaiveDate::from_ymd_opt(10_000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(format_sqlite_timestamp(&far), None);
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap();
        assert_eq!(format_sqlite_timestamp(&leap), None);
    }

    #[test]
    fn other_forms_are_left_to_diesel() {
        for text in [
            "2026-11-22T10:00:00",
            "2026-11-22 10:00:00.",
            "2026-11-22 10:00:00Z",
            "2026-11-22 10:00",
            "2026-02-30 10:00:00",
            "2026-11-22 24:00:00",
            "2026-11-22 10:00:00.1234567890",
            "+026-11-22 10:00:00",
            "2460641.5",
        ] {
            assert_eq!(parse_sqlite_timestamp(text), None, "{text}");
        }
    }
}
