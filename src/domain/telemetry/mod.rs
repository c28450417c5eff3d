//! Telemetry from device fleets: heartbeats (fleet health), inference sessions and training
//! updates, and the answers over time windows read from their summaries.
//!
//! Every ingest route follows one contract, written here once:
//! - a batch holds at most [`MAX_BATCH`] events; more is PAYLOAD_TOO_LARGE for the whole
//!   request;
//! - each event is checked on its own: a bad one is reported by its index and reason and never
//!   stored, and the good ones of the batch are stored;
//! - an event id already stored (a retry) is acknowledged as a duplicate and not counted again;
//! - the events accepted, their devices and the summaries they change commit in one
//!   transaction, so a batch is stored whole or not at all.
//!
//! Any key of the event's project may send, the INGEST role included; an event for a model
//! the key cannot see is refused as NOT_FOUND, like one for a model that does not exist.

pub mod devices;
pub mod inference;
pub mod sketch;
pub mod training;

use std::collections::HashMap;

use crate::app::App;
use crate::auth::{Principal, Scope};
use crate::db::devices::Device;
use crate::db::model_versions;
use crate::db::models::Model;
use crate::domain::{models as model_rules, organizations, validate};
use crate::error::AppError;
use crate::values::{Id, Role, Timestamp};

/// Most events one request may carry.
pub const MAX_BATCH: usize = 10_000;

/// How far ahead of the server's clock an event's time may be (device clocks drift).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Longest device identifier, metric name and error code.
pub const DEVICE_ID_MAX: usize = 128;

/// Largest latency or time to first token accepted, in milliseconds (a day): more is a clock or
/// unit error, and would stretch a sketch's bins past their bound.
pub const MAX_MILLIS: f64 = 86_400_000.0;

/// Largest token or sample count of one event: summary counters then stay far from overflow.
pub const MAX_COUNT: i64 = i32::MAX as i64;

/// One event refused: its position in the batch and why.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub index: usize,
    pub error: AppError,
}

/// The answer to a batch.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// Events stored by this request.
    pub accepted: usize,
    /// Events already stored before (retries), acknowledged and skipped.
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
}

/// A batch as the caller parsed it: an event, or why its text could not be read.
pub type Batch<T> = Vec<Result<T, AppError>>;

/// A batch's events as they are checked one by one: the good ones in batch order, and a
/// receipt listing the bad ones by index.
pub struct Sifted<R> {
    pub good: Vec<R>,
    pub receipt: Receipt,
}

impl<R> Sifted<R> {
    pub fn new(len: usize) -> Result<Sifted<R>, AppError> {
        check_batch_size(len)?;
        Ok(Sifted {
            good: Vec::with_capacity(len),
            receipt: Receipt::default(),
        })
    }

    /// Takes event `index`'s check: the request's fault rejects that event alone, a fault of
    /// the server's fails the whole batch.
    pub fn take(&mut self, index: usize, checked: Result<R, AppError>) -> Result<(), AppError> {
        match checked {
            Ok(row) => self.good.push(row),
            Err(error) if error.is_client_error() => {
                self.receipt.rejected.push(Rejection { index, error })
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }
}

/// The devices events name that this replica does not know to be registered, as rows to
/// register (in key order, once each; no heartbeat yet, so they start OFFLINE).
pub fn new_devices<'a>(
    app: &App,
    named: impl Iterator<Item = (Id, &'a str)>,
    now: Timestamp,
) -> Vec<Device> {
    let named: std::collections::BTreeSet<(Id, &str)> = named.collect();
    app.known_devices
        .unknown(named)
        .into_iter()
        .map(|(project, external)| devices::unregistered(project, external, now))
        .collect()
}

pub fn check_batch_size(len: usize) -> Result<(), AppError> {
    if len > MAX_BATCH {
        return Err(batch_too_large());
    }
    Ok(())
}

pub fn batch_too_large() -> AppError {
    AppError::PayloadTooLarge(format!(
        "a batch holds at most {MAX_BATCH} events; split it"
    ))
}

/// A device's own identifier: trimmed, non-empty, single-line, bounded.
pub fn device_id(field: &str, value: &str) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "must not contain control characters",
        ));
    }
    validate::bounded(field, trimmed, DEVICE_ID_MAX)?;
    Ok(trimmed.to_owned())
}

/// The time window raw events are kept for, and events accepted within.
pub fn retention(app: &App) -> chrono::Duration {
    chrono::Duration::days(i64::from(app.config.telemetry_retention_days))
}

/// An event's time is accepted within the raw retention and up to the clock skew ahead: an
/// older event could no longer be recognised as a retry (its raw row is gone), so counting it
/// could count it twice.
pub fn check_event_time(
    app: &App,
    field: &str,
    at: Timestamp,
    now: Timestamp,
) -> Result<(), AppError> {
    if at.0 > now.0 + chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS) {
        return Err(AppError::bad_input(
            field,
            format!(
                "is more than {} minutes ahead of the server's clock",
                MAX_CLOCK_SKEW_SECS / 60
            ),
        ));
    }
    if at.0 < now.0 - retention(app) {
        return Err(AppError::bad_input(
            field,
            format!(
                "is older than the telemetry retention ({} days)",
                app.config.telemetry_retention_days
            ),
        ));
    }
    Ok(())
}

/// How long past the retention raw events stay: ingest refuses events older than the
/// retention by its replica's clock, and replicas' clocks differ a little, so a retry accepted
/// by one still finds its event stored.
pub const REMOVAL_MARGIN_SECS: i64 = 3600;

/// Removes raw events older than the retention and its margin, a minute of one model's events
/// per transaction; their summaries stay. Safe on every replica at once: each row is deleted
/// once, and replicas delete in the same (model, time) order.
pub async fn remove_expired(app: &App) -> Result<usize, AppError> {
    let cutoff = Timestamp(
        app.clock.now().0 - retention(app) - chrono::Duration::seconds(REMOVAL_MARGIN_SECS),
    );
    crate::db::telemetry::delete_raw_before(&app.db, cutoff, chrono::Duration::minutes(1)).await
}

/// A duration in milliseconds: finite, not negative, at most [`MAX_MILLIS`].
pub fn measure(field: &str, value: f64) -> Result<f64, AppError> {
    if !value.is_finite() {
        return Err(AppError::bad_input(field, "must be a finite number"));
    }
    if value < 0.0 {
        return Err(AppError::bad_input(field, "must not be negative"));
    }
    if value > MAX_MILLIS {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {MAX_MILLIS} (a day, in milliseconds)"),
        ));
    }
    Ok(value)
}

/// A count of one event: not negative, at most [`MAX_COUNT`].
pub fn count(field: &str, value: i64) -> Result<i64, AppError> {
    if value < 0 {
        return Err(AppError::bad_input(field, "must not be negative"));
    }
    if value > MAX_COUNT {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {MAX_COUNT}"),
        ));
    }
    Ok(value)
}

/// Names (labels, metrics) trimmed and checked, each given once.
pub fn named<T>(
    field: &str,
    pairs: Vec<(String, T)>,
    max: usize,
) -> Result<std::collections::BTreeMap<String, T>, AppError> {
    if pairs.len() > max {
        return Err(AppError::bad_input(field, format!("at most {max} entries")));
    }
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in pairs {
        let name = validate::name(field, &name)?;
        validate::bounded(field, &name, DEVICE_ID_MAX)?;
        if out.contains_key(&name) {
            return Err(AppError::bad_input(
                field,
                format!("`{name}` is given twice"),
            ));
        }
        out.insert(name, value);
    }
    Ok(out)
}

/// Where an event belongs once its model and version are resolved.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub project_id: Id,
    pub model_id: Id,
    pub version_id: Id,
}

/// Resolves the model and version names of one batch, each distinct name once.
pub struct Resolver<'a> {
    app: &'a App,
    caller: &'a Principal,
    models: HashMap<String, Result<Model, AppError>>,
    versions: HashMap<(Id, Option<String>), Result<Id, AppError>>,
    projects: HashMap<Option<String>, Result<Id, AppError>>,
}

impl<'a> Resolver<'a> {
    pub fn new(app: &'a App, caller: &'a Principal) -> Resolver<'a> {
        Resolver {
            app,
            caller,
            models: HashMap::new(),
            versions: HashMap::new(),
            projects: HashMap::new(),
        }
    }

    /// `model` is a model id or `<project slug>/<model name>`; `version` a version id or
    /// label, absent for the model's current version.
    pub async fn target(&mut self, model: &str, version: Option<&str>) -> Result<Target, AppError> {
        let model = self.model(model).await?;
        let version_id = self.version(&model, version).await?;
        Ok(Target {
            project_id: model.project_id,
            model_id: model.id,
            version_id,
        })
    }

    async fn model(&mut self, reference: &str) -> Result<Model, AppError> {
        if let Some(found) = self.models.get(reference) {
            return found.clone();
        }
        let found = self.lookup_model(reference).await;
        self.models.insert(reference.to_owned(), found.clone());
        found
    }

    /// The model rules' own lookups, at the INGEST role (any key of the project). Any model
    /// that cannot be resolved, whatever the reason, is "model not found".
    async fn lookup_model(&self, reference: &str) -> Result<Model, AppError> {
        let db = &self.app.db;
        let found = match reference.split_once('/') {
            Some((project, name)) => model_rules::by_name(db, self.caller, project, name).await,
            None => match reference.parse::<Id>() {
                Ok(id) => model_rules::visible_model(db, self.caller, id, Role::Ingest).await,
                Err(_) => {
                    return Err(AppError::bad_input(
                        "model",
                        "give a model id or `<project>/<model name>`",
                    ));
                }
            },
        };
        found.map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("model"),
            other => other,
        })
    }

    async fn version(&mut self, model: &Model, reference: Option<&str>) -> Result<Id, AppError> {
        let key = (model.id, reference.map(str::to_owned));
        if let Some(found) = self.versions.get(&key) {
            return found.clone();
        }
        let found = self.lookup_version(model, reference).await;
        self.versions.insert(key, found.clone());
        found
    }

    async fn lookup_version(&self, model: &Model, reference: Option<&str>) -> Result<Id, AppError> {
        let db = &self.app.db;
        let Some(reference) = reference else {
            return model.current_version_id.ok_or_else(|| {
                AppError::bad_input(
                    "version",
                    "the model has no current version: name the version",
                )
            });
        };
        let by_id = match reference.parse::<Id>() {
            Ok(id) => model_versions::find(db, id)
                .await?
                .filter(|v| v.model_id == model.id),
            Err(_) => None,
        };
        let version = match by_id {
            Some(v) => Some(v),
            None => model_versions::by_label(db, model.id, reference).await?,
        };
        version
            .map(|v| v.id)
            .ok_or(AppError::NotFound("model version"))
    }

    /// The project a heartbeat names (slug or id), or the key's own project.
    pub async fn project(&mut self, reference: Option<&str>) -> Result<Id, AppError> {
        let key = reference.map(str::to_owned);
        if let Some(found) = self.projects.get(&key) {
            return found.clone();
        }
        let found = self.lookup_project(reference).await;
        self.projects.insert(key, found.clone());
        found
    }

    async fn lookup_project(&self, reference: Option<&str>) -> Result<Id, AppError> {
        let Some(reference) = reference else {
            return match self.caller.scope {
                Scope::Project { project, .. } => Ok(project),
                _ => Err(AppError::bad_input(
                    "project",
                    "name the project: this key is not scoped to one",
                )),
            };
        };
        let db = &self.app.db;
        let project = match reference.parse::<Id>() {
            Ok(id) => organizations::visible_project(db, self.caller, id).await?,
            Err(_) => organizations::project_by_slug(db, self.caller, reference).await?,
        };
        Ok(project.id)
    }
}
