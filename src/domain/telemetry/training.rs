//! Training updates from devices (on-device or federated training): ingest, and the
//! statistics per version, per metric and per device. The statistics cover every update ever
//! accepted: they are summaries, kept after the raw rows' retention.

use std::collections::{BTreeMap, BTreeSet};

use super::sketch::Sketch;
use super::{Batch, Receipt, Resolver, Sifted, check_event_time, count, device_id, new_devices};
use crate::app::App;
use crate::auth::Principal;
use crate::db::page::{Page, PageRequest};
use crate::db::telemetry::{self as telemetry_db, DeviceTraining, TrainingUpdateRow};
use crate::domain::{models as model_rules, versions as version_rules};
use crate::error::AppError;
use crate::values::{Id, Role, Timestamp};

/// Most metrics one update may carry.
pub const METRICS_MAX: usize = 64;

/// One training update as a device reports it.
#[derive(Debug, Clone)]
pub struct TrainingUpdate {
    pub id: Id,
    /// A model id or `<project>/<model name>`.
    pub model: String,
    /// A version id or label; absent: the model's current version.
    pub version: Option<String>,
    pub device_id: String,
    pub sample_count: i64,
    /// Metric name and value (loss, accuracy, …), each name once.
    pub metrics: Vec<(String, f64)>,
    pub recorded_at: Timestamp,
}

fn check_metrics(metrics: Vec<(String, f64)>) -> Result<BTreeMap<String, f64>, AppError> {
    let metrics = super::named("metrics", metrics, METRICS_MAX)?;
    if let Some((name, _)) = metrics.iter().find(|(_, v)| !v.is_finite()) {
        return Err(AppError::bad_input(
            "metrics",
            format!("`{name}` must be a finite number"),
        ));
    }
    Ok(metrics)
}

/// Stores a batch of training updates (see the module contract in `telemetry`).
pub async fn record(
    app: &App,
    caller: &Principal,
    batch: Batch<TrainingUpdate>,
) -> Result<Receipt, AppError> {
    let now = app.clock.now();
    let mut resolver = Resolver::new(app, caller);
    let mut sifted = Sifted::new(batch.len())?;
    for (index, item) in batch.into_iter().enumerate() {
        let checked = match item {
            Ok(update) => checked_row(app, &mut resolver, update, now).await,
            Err(e) => Err(e),
        };
        sifted.take(index, checked)?;
    }
    let Sifted {
        good: mut rows,
        mut receipt,
    } = sifted;
    if rows.is_empty() {
        return Ok(receipt);
    }
    let valid = rows.len();
    // Sorted (stably, so an id sent twice keeps its first event) and without repeats, as for
    // inference sessions.
    rows.sort_by_key(|r| (r.0.project_id, r.0.id));
    rows.dedup_by_key(|r| (r.0.project_id, r.0.id));
    let devices = new_devices(
        app,
        rows.iter()
            .map(|(r, _)| (r.project_id, r.device_external_id.as_str())),
        now,
    );
    let raw: Vec<TrainingUpdateRow> = rows.iter().map(|(r, _)| r.clone()).collect();
    let (stored, devices) = app
        .db
        .bulk_transaction(async move |tx| {
            crate::db::devices::register(tx, &devices).await?;
            let stored: BTreeSet<(Id, Id)> = telemetry_db::insert_training_updates(tx, &raw)
                .await?
                .into_iter()
                .collect();
            let mut per_device: BTreeMap<(Id, String), DeviceTraining> = BTreeMap::new();
            let mut per_metric: BTreeMap<(Id, String), Sketch> = BTreeMap::new();
            for (row, metrics) in rows
                .iter()
                .filter(|(r, _)| stored.contains(&(r.project_id, r.id)))
            {
                let key = (row.model_version_id, row.device_external_id.clone());
                let entry = per_device.entry(key).or_insert_with(|| DeviceTraining {
                    model_version_id: row.model_version_id,
                    device_external_id: row.device_external_id.clone(),
                    model_id: row.model_id,
                    updates: 0,
                    samples: 0,
                    latest_metrics: row.metrics.clone(),
                    latest_recorded_at: row.recorded_at,
                });
                entry.updates = entry.updates.saturating_add(1);
                entry.samples = entry.samples.saturating_add(row.sample_count);
                if row.recorded_at >= entry.latest_recorded_at {
                    entry.latest_recorded_at = row.recorded_at;
                    entry.latest_metrics = row.metrics.clone();
                }
                for (name, value) in metrics {
                    per_metric
                        .entry((row.model_version_id, name.clone()))
                        .or_default()
                        .add(*value);
                }
            }
            let deltas: Vec<DeviceTraining> = per_device.values().cloned().collect();
            let mut newer = Vec::new();
            for (version, device, stored_latest) in
                telemetry_db::add_device_training(tx, &deltas).await?
            {
                let delta = per_device.get(&(version, device.clone())).ok_or_else(|| {
                    AppError::internal("a device summary came back under another key")
                })?;
                if delta.latest_recorded_at > stored_latest {
                    newer.push((
                        version,
                        device,
                        delta.latest_metrics.clone(),
                        delta.latest_recorded_at,
                    ));
                }
            }
            telemetry_db::set_device_latest(tx, &newer).await?;
            let keys: Vec<(Id, String)> = per_metric.keys().cloned().collect();
            let mut merged = Vec::with_capacity(keys.len());
            for (version, metric, sketch) in telemetry_db::lock_metric_sketches(tx, &keys).await? {
                let mut sketch = Sketch::decode_or_empty(sketch.as_deref())?;
                let delta = per_metric.get(&(version, metric.clone())).ok_or_else(|| {
                    AppError::internal("a metric summary came back under another key")
                })?;
                sketch.merge(delta)?;
                merged.push((version, metric, sketch.encode()));
            }
            telemetry_db::set_metric_sketches(tx, &merged).await?;
            Ok((stored.len(), devices))
        })
        .await?;
    app.known_devices.remember(&devices);
    receipt.accepted = stored;
    receipt.duplicates = valid - stored;
    Ok(receipt)
}

async fn checked_row(
    app: &App,
    resolver: &mut Resolver<'_>,
    update: TrainingUpdate,
    now: Timestamp,
) -> Result<(TrainingUpdateRow, BTreeMap<String, f64>), AppError> {
    let device = device_id("deviceId", &update.device_id)?;
    check_event_time(app, "recordedAt", update.recorded_at, now)?;
    count("sampleCount", update.sample_count)?;
    let values = check_metrics(update.metrics)?;
    let target = resolver
        .target(&update.model, update.version.as_deref())
        .await?;
    let metrics = serde_json::to_string(&values).map_err(AppError::internal)?;
    Ok((
        TrainingUpdateRow {
            project_id: target.project_id,
            id: update.id,
            model_id: target.model_id,
            model_version_id: target.version_id,
            device_external_id: device,
            sample_count: update.sample_count,
            metrics,
            recorded_at: update.recorded_at,
        },
        values,
    ))
}

/// One version's totals.
#[derive(Debug, Clone, Default)]
pub struct VersionTraining {
    pub version_id: Id,
    pub updates: i64,
    pub samples: i64,
    pub devices: i64,
    /// The newest update's metrics (a JSON object) and time.
    pub latest: Option<(serde_json::Value, Timestamp)>,
}

/// One metric over a version's updates; the percentiles are within the sketch's error.
#[derive(Debug, Clone, Default)]
pub struct MetricStats {
    pub name: String,
    pub count: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

async fn totals(
    app: &App,
    model_id: Option<Id>,
    version_id: Option<Id>,
) -> Result<Vec<VersionTraining>, AppError> {
    let mut out = Vec::new();
    for (version_id, updates, samples, devices) in
        telemetry_db::training_totals(&app.db, model_id, version_id).await?
    {
        let latest = telemetry_db::latest_training(&app.db, version_id)
            .await?
            .map(|(metrics, at)| (serde_json::from_str(&metrics).unwrap_or_default(), at));
        out.push(VersionTraining {
            version_id,
            updates,
            samples,
            devices,
            latest,
        });
    }
    Ok(out)
}

/// Per version of the model that received updates, newest version first.
pub async fn model_stats(
    app: &App,
    caller: &Principal,
    model_id: Id,
) -> Result<Vec<VersionTraining>, AppError> {
    let model = model_rules::visible_model(&app.db, caller, model_id, Role::Viewer).await?;
    let mut stats = totals(app, Some(model.id), None).await?;
    stats.sort_by_key(|s| std::cmp::Reverse(s.version_id));
    Ok(stats)
}

/// One version's totals and per-metric statistics; zeros when it received none.
pub async fn version_stats(
    app: &App,
    caller: &Principal,
    version_id: Id,
) -> Result<(VersionTraining, Vec<MetricStats>), AppError> {
    let (version, _) =
        version_rules::visible_version(&app.db, caller, version_id, Role::Viewer).await?;
    let total = totals(app, None, Some(version.id))
        .await?
        .pop()
        .unwrap_or(VersionTraining {
            version_id: version.id,
            ..VersionTraining::default()
        });
    let mut metrics = Vec::new();
    for (name, bytes) in telemetry_db::metric_sketches(&app.db, version.id).await? {
        let sketch = Sketch::decode_or_empty(bytes.as_deref())?;
        let count = sketch.count() as i64;
        metrics.push(MetricStats {
            name,
            count,
            min: sketch.min(),
            max: sketch.max(),
            mean: (count > 0).then(|| sketch.sum() / count as f64),
            p50: sketch.quantile(0.5),
            p95: sketch.quantile(0.95),
            p99: sketch.quantile(0.99),
        });
    }
    Ok((total, metrics))
}

/// The version's devices and what each sent, by device identifier. The caller has seen the
/// version (through [`version_stats`]).
pub async fn device_page(
    app: &App,
    version_id: Id,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<DeviceTraining>, AppError> {
    telemetry_db::device_training_page(&app.db, version_id, page, count_total).await
}
