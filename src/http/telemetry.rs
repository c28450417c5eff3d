//! `POST /v1/telemetry/{heartbeats,inference,training-updates}`: batches of device events.
//!
//! A body is a JSON array (`application/json`) or one JSON object per line
//! (`application/x-ndjson`), optionally gzip-compressed (`Content-Encoding: gzip`). Each event
//! is read on its own, so one that cannot be read is rejected by its index and the others go
//! on; the answer is `{"accepted", "duplicates", "rejected": [{"index", "code", "field",
//! "message"}]}`. More than 10,000 events, or a body past its size limits, is 413.

use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::{closing, is_body_timeout, sender};
use crate::app::App;
use crate::domain::telemetry::devices::{self, Heartbeat};
use crate::domain::telemetry::inference::{self, InferenceSession};
use crate::domain::telemetry::training::{self, TrainingUpdate};
use crate::domain::telemetry::{Batch, MAX_BATCH, Receipt};
use crate::error::AppError;
use crate::values::{Id, Timestamp};

/// Largest body as sent (compressed or not).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Largest body once decompressed: 10,000 events of up to ~3 KiB each.
const MAX_DECODED_BYTES: usize = 32 * 1024 * 1024;

pub async fn heartbeats(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    receive(
        &app,
        &headers,
        body,
        Reader {
            fast: |_| None,
            read: heartbeat,
        },
        async |app, caller, batch| devices::record_heartbeats(app, caller, batch).await,
    )
    .await
}

pub async fn inference(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    receive(
        &app,
        &headers,
        body,
        Reader {
            fast: wire_session,
            read: inference_session,
        },
        async |app, caller, batch| inference::record(app, caller, batch).await,
    )
    .await
}

pub async fn training_updates(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    receive(
        &app,
        &headers,
        body,
        Reader {
            fast: |_| None,
            read: training_update,
        },
        async |app, caller, batch| training::record(app, caller, batch).await,
    )
    .await
}

/// How a route reads one event from its JSON text.
struct Reader<T> {
    /// Straight from an NDJSON line's text into the event, without building a JSON tree
    /// first: `None` when anything is off (a field missing, unknown or of another type, an
    /// escaped string, a repeated key), and then `read` decides.
    fast: fn(&[u8]) -> Option<T>,
    /// Field by field from the parsed object, naming the field that is wrong.
    read: fn(&Map<String, Value>) -> Result<T, AppError>,
}

impl<T> Clone for Reader<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Reader<T> {}

impl<T> Reader<T> {
    /// One NDJSON line.
    fn line(self, text: &[u8]) -> Result<T, AppError> {
        let object = text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if object && let Some(event) = (self.fast)(text) {
            return Ok(event);
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => self.value(value),
            Err(e) => Err(AppError::bad_input(
                "event",
                format!("the line is not JSON: {e}"),
            )),
        }
    }

    /// One element of a JSON array, already parsed with the whole body.
    fn value(self, value: Value) -> Result<T, AppError> {
        match value {
            Value::Object(object) => (self.read)(&object),
            _ => Err(AppError::bad_input("event", "an event is a JSON object")),
        }
    }
}

/// The steps every route shares: the key, the body, one event at a time, the receipt.
async fn receive<T: Send + 'static>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    reader: Reader<T>,
    record: impl AsyncFnOnce(&App, &crate::auth::Principal, Batch<T>) -> Result<Receipt, AppError>,
) -> Response {
    let caller = match sender(app, headers).await {
        Ok(caller) => caller,
        Err(e) => return closing(e),
    };
    let batch = match events(headers, body, reader).await {
        Ok(batch) => batch,
        Err(e) => return closing(e),
    };
    match record(app, &caller, batch).await {
        Ok(receipt) => axum::Json(receipt_json(&receipt)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub fn receipt_json(receipt: &Receipt) -> Value {
    let rejected: Vec<Value> = receipt
        .rejected
        .iter()
        .map(|r| {
            serde_json::json!({
                "index": r.index,
                "code": r.error.code(),
                "field": r.error.field(),
                "message": r.error.message(),
            })
        })
        .collect();
    serde_json::json!({
        "accepted": receipt.accepted,
        "duplicates": receipt.duplicates,
        "rejected": rejected,
    })
}

/// The body's events, each read or the reason it could not be.
async fn events<T: Send + 'static>(
    headers: &HeaderMap,
    body: Body,
    reader: Reader<T>,
) -> Result<Batch<T>, AppError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ndjson = match media.as_str() {
        "application/json" => false,
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => true,
        _ => {
            return Err(AppError::UnsupportedMediaType(
                "send a JSON array (`application/json`) or one event per line \
                 (`application/x-ndjson`)"
                    .into(),
            ));
        }
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(AppError::UnsupportedMediaType(format!(
                "`Content-Encoding: {other}` is not read here: send gzip or no encoding"
            )));
        }
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if is_body_timeout(&e) {
                AppError::RequestTimeout
            } else {
                AppError::PayloadTooLarge(format!(
                    "a telemetry body may be at most {MAX_BODY_BYTES} bytes"
                ))
            }
        })?;
    // Inflating and parsing up to tens of MiB is CPU work: off the async workers.
    tokio::task::spawn_blocking(move || decode(&bytes, gzip, ndjson, reader))
        .await
        .map_err(AppError::internal)?
}

/// The events of a body already read: inflated when gzip, split into lines or read as an
/// array. Counting stops at one past [`MAX_BATCH`], so a body of a million tiny events is
/// refused before a million values are built.
fn decode<T>(
    bytes: &[u8],
    gzip: bool,
    ndjson: bool,
    reader: Reader<T>,
) -> Result<Batch<T>, AppError> {
    let inflated;
    let text: &[u8] = if gzip {
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_DECODED_BYTES as u64 + 1)
            .read_to_end(&mut decoded)
            .map_err(|e| {
                AppError::bad_input("body", format!("the gzip body does not decode: {e}"))
            })?;
        if decoded.len() > MAX_DECODED_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "a telemetry body may be at most {MAX_DECODED_BYTES} bytes decompressed"
            )));
        }
        inflated = decoded;
        &inflated
    } else {
        bytes
    };
    if ndjson {
        // Blank lines are not events: `index` counts events, not lines.
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .take(MAX_BATCH + 1)
            .collect();
        crate::domain::telemetry::check_batch_size(lines.len())?;
        return Ok(lines.into_iter().map(|line| reader.line(line)).collect());
    }
    match serde_json::from_slice::<Events>(text) {
        Ok(Events(events)) => Ok(events
            .into_iter()
            .map(|event| reader.value(event))
            .collect()),
        Err(e) if e.to_string().starts_with(TOO_MANY) => {
            Err(crate::domain::telemetry::batch_too_large())
        }
        Err(e) if e.is_data() => Err(AppError::bad_input(
            "body",
            "send a JSON array of events (or NDJSON, one per line)",
        )),
        Err(e) => Err(AppError::bad_input("body", format!("not JSON: {e}"))),
    }
}

const TOO_MANY: &str = "more than the batch limit";

/// A JSON array of at most [`MAX_BATCH`] values: reading stops at the next one.
struct Events(Vec<Value>);

impl<'de> serde::Deserialize<'de> for Events {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Events;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of events")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Events, A::Error> {
                let mut events = Vec::new();
                while let Some(event) = seq.next_element::<Value>()? {
                    if events.len() == MAX_BATCH {
                        return Err(serde::de::Error::custom(TOO_MANY));
                    }
                    events.push(event);
                }
                Ok(Events(events))
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// Typed reads of one event's fields, each failure naming its field.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn missing(name: &str) -> AppError {
        AppError::bad_input(name, "is required")
    }

    fn text(&self, name: &str) -> Result<Option<String>, AppError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(AppError::bad_input(name, "must be a string")),
        }
    }

    fn required_text(&self, name: &str) -> Result<String, AppError> {
        self.text(name)?.ok_or_else(|| Self::missing(name))
    }

    fn number(&self, name: &str) -> Result<Option<f64>, AppError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(AppError::bad_input(name, "must be a number")),
        }
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, AppError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| AppError::bad_input(name, "must be a whole number")),
            Some(_) => Err(AppError::bad_input(name, "must be a whole number")),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, AppError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(AppError::bad_input(name, "must be true or false")),
        }
    }

    fn id(&self, name: &str) -> Result<Id, AppError> {
        self.required_text(name)?
            .parse()
            .map_err(|_| AppError::bad_input(name, "must be a UUID"))
    }

    fn time(&self, name: &str) -> Result<Timestamp, AppError> {
        let text = self.required_text(name)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| AppError::bad_input(name, "must be an RFC 3339 date-time"))
    }

    fn map<T>(
        &self,
        name: &str,
        value: impl Fn(&Value) -> Option<T>,
        expected: &str,
    ) -> Result<Option<Vec<(String, T)>>, AppError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(object)) => object
                .iter()
                .map(|(k, v)| {
                    value(v).map(|v| (k.clone(), v)).ok_or_else(|| {
                        AppError::bad_input(name, format!("`{k}` must be {expected}"))
                    })
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(AppError::bad_input(name, "must be an object")),
        }
    }
}

fn heartbeat(object: &Map<String, Value>) -> Result<Heartbeat, AppError> {
    let f = Fields(object);
    Ok(Heartbeat {
        project: f.text("project")?,
        device_id: f.required_text("deviceId")?,
        device_type: f.text("deviceType")?,
        os: f.text("os")?,
        runtime_version: f.text("runtimeVersion")?,
        labels: f.map("labels", |v| v.as_str().map(str::to_owned), "a string")?,
    })
}

/// An inference session as sent, borrowed from the body's text. Unknown fields send the event
/// to the field-by-field reading, which checks that their text is JSON.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSession<'a> {
    id: &'a str,
    model: &'a str,
    version: Option<&'a str>,
    device_id: &'a str,
    started_at: &'a str,
    latency_ms: f64,
    time_to_first_token_ms: Option<f64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    success: bool,
    error_code: Option<&'a str>,
}

/// [`inference_session`] without the JSON tree: the same event whenever both read one.
fn wire_session(text: &[u8]) -> Option<InferenceSession> {
    let wire: WireSession = serde_json::from_slice(text).ok()?;
    Some(InferenceSession {
        id: wire.id.parse().ok()?,
        model: wire.model.to_owned(),
        version: wire.version.map(str::to_owned),
        device_id: wire.device_id.to_owned(),
        started_at: Timestamp::parse_rfc3339(wire.started_at)?,
        latency_ms: wire.latency_ms,
        time_to_first_token_ms: wire.time_to_first_token_ms,
        input_tokens: wire.input_tokens,
        output_tokens: wire.output_tokens,
        success: wire.success,
        error_code: wire.error_code.map(str::to_owned),
    })
}

fn inference_session(object: &Map<String, Value>) -> Result<InferenceSession, AppError> {
    let f = Fields(object);
    Ok(InferenceSession {
        id: f.id("id")?,
        model: f.required_text("model")?,
        version: f.text("version")?,
        device_id: f.required_text("deviceId")?,
        started_at: f.time("startedAt")?,
        latency_ms: f
            .number("latencyMs")?
            .ok_or_else(|| Fields::missing("latencyMs"))?,
        time_to_first_token_ms: f.number("timeToFirstTokenMs")?,
        input_tokens: f.integer("inputTokens")?,
        output_tokens: f.integer("outputTokens")?,
        success: f
            .boolean("success")?
            .ok_or_else(|| Fields::missing("success"))?,
        error_code: f.text("errorCode")?,
    })
}

fn training_update(object: &Map<String, Value>) -> Result<TrainingUpdate, AppError> {
    let f = Fields(object);
    Ok(TrainingUpdate {
        id: f.id("id")?,
        model: f.required_text("model")?,
        version: f.text("version")?,
        device_id: f.required_text("deviceId")?,
        sample_count: f
            .integer("sampleCount")?
            .ok_or_else(|| Fields::missing("sampleCount"))?,
        metrics: f
            .map("metrics", Value::as_f64, "a number")?
            .unwrap_or_default(),
        recorded_at: f.time("recordedAt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer for one event as text: the event, or the error's code, field and message.
    fn answer(reader: Reader<InferenceSession>, text: &str) -> String {
        match reader.line(text.as_bytes()) {
            Ok(session) => format!("{session:?}"),
            Err(e) => format!("{} {:?} {}", e.code(), e.field(), e.message()),
        }
    }

    #[test]
    fn the_typed_reading_never_changes_an_answer() {
        let typed = Reader {
            fast: wire_session,
            read: inference_session,
        };
        let by_field = Reader {
            fast: |_| None,
            read: inference_session,
        };
        let base = r#""id":"0190a1b2-0000-7000-8000-000000000001","model":"p/m","deviceId":"d-1","startedAt":"2026-11-26T10:00:00.123Z","latencyMs":12.5,"success":true"#;
        let cases = [
            format!("{{{base}}}"),
            format!(
                "{{{base},\"version\":\"v1\",\"timeToFirstTokenMs\":3,\"inputTokens\":7,\"outputTokens\":9,\"errorCode\":\"E1\"}}"
            ),
            format!("{{{base},\"version\":null,\"errorCode\":null,\"extra\":[1,2]}}"),
            format!("{{{base},\"version\":\"v\\u0031\"}}"),
            format!("{{{base},\"deviceId\":\"d-2\"}}"),
            format!("{{{base},\"inputTokens\":7.0}}"),
            format!("{{{base},\"inputTokens\":18446744073709551615}}"),
            format!("{{{base},\"version\":3}}"),
            format!("{{{base},\"startedAt\":\"yesterday\"}}"),
            format!("{{{base},\"id\":\"not-a-uuid\"}}"),
            format!("{{{base},\"success\":null}}"),
            r#"{"id":"0190a1b2-0000-7000-8000-000000000001","model":"p/m"}"#.to_owned(),
            "[1, 2]".to_owned(),
            r#"["0190a1b2-0000-7000-8000-000000000001","p/m",null,"d-1","2026-11-26T10:00:00Z",12.5,null,null,null,true,null]"#.to_owned(),
            format!("{{{base},\"extra\":1e400}}"),
            format!("{{{base},\"extra\":\"\\ud800\"}}"),
            "{not json".to_owned(),
        ];
        for case in &cases {
            assert_eq!(answer(typed, case), answer(by_field, case), "{case}");
        }
        // The typed reading takes plain events, and leaves to the other an escaped string, a
        // repeated key and an unknown field.
        assert!(wire_session(cases[0].as_bytes()).is_some());
        assert!(wire_session(cases[1].as_bytes()).is_some());
        for odd in [3, 4, 2] {
            assert!(
                wire_session(cases[odd].as_bytes()).is_none(),
                "{}",
                cases[odd]
            );
        }
    }
}
