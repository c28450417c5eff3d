//! Heartbeats and fleet health.

use std::collections::HashMap;

use super::{Batch, Receipt, Resolver, Sifted, device_id};
use crate::app::App;
use crate::auth::Principal;
use crate::db::devices::{self as devices_db, Device, DeviceFilter, HeartbeatRange};
use crate::db::page::{Page, PageRequest};
use crate::domain::{organizations, validate};
use crate::error::AppError;
use crate::values::{DeviceHealth, Id, Role, Timestamp};

/// Most labels a device carries, and their sizes.
pub const LABELS_MAX: usize = 32;
pub const LABEL_VALUE_MAX: usize = 256;

/// One heartbeat: the device is alive now, with what it says about itself.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// The project (slug or id); absent: the key's own project.
    pub project: Option<String>,
    pub device_id: String,
    pub device_type: Option<String>,
    pub os: Option<String>,
    pub runtime_version: Option<String>,
    /// Replace the device's labels (each name once); absent keeps them.
    pub labels: Option<Vec<(String, String)>>,
}

/// A device's health at `now` under the configured thresholds.
pub fn health(app: &App, last_heartbeat: Option<Timestamp>, now: Timestamp) -> DeviceHealth {
    let (healthy_since, offline_since) = thresholds(app, now);
    match last_heartbeat {
        Some(t) if t.0 >= healthy_since.0 => DeviceHealth::Healthy,
        Some(t) if t.0 >= offline_since.0 => DeviceHealth::Degraded,
        _ => DeviceHealth::Offline,
    }
}

/// The heartbeat times from which a device counts as healthy, and as not offline.
fn thresholds(app: &App, now: Timestamp) -> (Timestamp, Timestamp) {
    // Bounded by the flags' ranges; an offline threshold below the degraded one reads as equal.
    let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(0));
    let degraded = app.config.device_degraded_after_secs;
    let offline = app.config.device_offline_after_secs.max(degraded);
    (
        Timestamp(now.0 - secs(degraded)),
        Timestamp(now.0 - secs(offline)),
    )
}

fn labels(field: &str, labels: Vec<(String, String)>) -> Result<String, AppError> {
    let labels = super::named(field, labels, LABELS_MAX)?;
    for value in labels.values() {
        validate::bounded(field, value, LABEL_VALUE_MAX)?;
        if let Some(c) = validate::forbidden_control(value) {
            return Err(AppError::bad_input(
                field,
                format!("contains the control character U+{:04X}", u32::from(c)),
            ));
        }
    }
    serde_json::to_string(&labels).map_err(AppError::internal)
}

fn short_text(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    validate::text(field, value, validate::SHORT_TEXT_MAX)
}

/// Records a batch of heartbeats: every device named is registered or refreshed, in one
/// transaction. A device named twice keeps the fields of its last heartbeat.
pub async fn record_heartbeats(
    app: &App,
    caller: &Principal,
    batch: Batch<Heartbeat>,
) -> Result<Receipt, AppError> {
    let now = app.clock.now();
    let mut resolver = Resolver::new(app, caller);
    let mut sifted = Sifted::new(batch.len())?;
    for (index, item) in batch.into_iter().enumerate() {
        let checked = match item {
            Ok(beat) => checked_heartbeat(&mut resolver, beat, now).await,
            Err(e) => Err(e),
        };
        sifted.take(index, checked)?;
    }
    let Sifted {
        good: beats,
        mut receipt,
    } = sifted;
    receipt.accepted = beats.len();
    // A device named twice keeps its last heartbeat.
    let mut latest: HashMap<(Id, String), (Device, bool)> = HashMap::new();
    for (device, has_labels) in beats {
        latest.insert(
            (device.project_id, device.external_id.clone()),
            (device, has_labels),
        );
    }
    let mut rows: Vec<(Device, bool)> = latest.into_values().collect();
    rows.sort_by(|a, b| {
        (a.0.project_id, &a.0.external_id).cmp(&(b.0.project_id, &b.0.external_id))
    });
    // Runs of rows that do or do not replace labels, written in key order (one statement per
    // run), so concurrent batches take the device rows' locks in one order.
    let mut runs: Vec<(bool, Vec<Device>)> = Vec::new();
    for (device, replaces_labels) in rows {
        match runs.last_mut() {
            Some((flag, run)) if *flag == replaces_labels => run.push(device),
            _ => runs.push((replaces_labels, vec![device])),
        }
    }
    if !runs.is_empty() {
        let runs = app
            .db
            .bulk_transaction(async move |tx| {
                for (replaces_labels, run) in &runs {
                    devices_db::heartbeat(tx, run, *replaces_labels).await?;
                }
                Ok(runs)
            })
            .await?;
        for (_, run) in &runs {
            app.known_devices.remember(run);
        }
    }
    Ok(receipt)
}

async fn checked_heartbeat(
    resolver: &mut Resolver<'_>,
    beat: Heartbeat,
    now: Timestamp,
) -> Result<(Device, bool), AppError> {
    let project_id = resolver.project(beat.project.as_deref()).await?;
    let has_labels = beat.labels.is_some();
    Ok((
        Device {
            id: Id::new(),
            project_id,
            external_id: device_id("deviceId", &beat.device_id)?,
            device_type: short_text("deviceType", beat.device_type)?,
            os: short_text("os", beat.os)?,
            runtime_version: short_text("runtimeVersion", beat.runtime_version)?,
            labels: labels("labels", beat.labels.unwrap_or_default())?,
            first_seen_at: now,
            last_heartbeat_at: Some(now),
        },
        has_labels,
    ))
}

/// The devices events name, registered if unknown (no heartbeat: they start OFFLINE).
pub fn unregistered(project_id: Id, external_id: &str, now: Timestamp) -> Device {
    Device {
        id: Id::new(),
        project_id,
        external_id: external_id.to_owned(),
        device_type: None,
        os: None,
        runtime_version: None,
        labels: "{}".into(),
        first_seen_at: now,
        last_heartbeat_at: None,
    }
}

pub struct DeviceListFilter {
    pub project_id: Option<Id>,
    pub device_type: Option<String>,
    pub health: Option<DeviceHealth>,
}

pub async fn list(
    app: &App,
    caller: &Principal,
    filter: DeviceListFilter,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<Device>, AppError> {
    caller.require_role(Role::Viewer)?;
    if let Some(project) = filter.project_id {
        organizations::visible_project(&app.db, caller, project).await?;
    }
    let (healthy_since, offline_since) = thresholds(app, app.clock.now());
    let heartbeat = filter.health.map(|h| match h {
        DeviceHealth::Healthy => HeartbeatRange {
            since: Some(healthy_since),
            ..HeartbeatRange::default()
        },
        DeviceHealth::Degraded => HeartbeatRange {
            since: Some(offline_since),
            before: Some(healthy_since),
            never: false,
        },
        DeviceHealth::Offline => HeartbeatRange {
            since: None,
            before: Some(offline_since),
            never: true,
        },
    });
    let filter = DeviceFilter {
        project_id: filter.project_id,
        device_type: filter.device_type,
        heartbeat,
    };
    devices_db::page(
        &app.db,
        caller.visible_projects(),
        &filter,
        page,
        count_total,
    )
    .await
}

pub async fn visible_device(app: &App, caller: &Principal, id: Id) -> Result<Device, AppError> {
    caller.require_role(Role::Viewer)?;
    let device = devices_db::find(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("device"))?;
    if !organizations::sees_project(&app.db, caller, device.project_id).await? {
        return Err(AppError::NotFound("device"));
    }
    Ok(device)
}

/// Device counts per health state, overall and per device type.
#[derive(Debug, Clone, Default)]
pub struct FleetHealth {
    pub overall: FleetCounts,
    pub by_device_type: Vec<(Option<String>, FleetCounts)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FleetCounts {
    pub total: i64,
    pub healthy: i64,
    pub degraded: i64,
    pub offline: i64,
}

/// The project's fleet as the caller may see it.
pub async fn fleet_health(
    app: &App,
    caller: &Principal,
    project_id: Id,
) -> Result<FleetHealth, AppError> {
    caller.require_role(Role::Viewer)?;
    organizations::visible_project(&app.db, caller, project_id).await?;
    fleet_of(app, project_id).await
}

/// The fleet of a project whose visibility the caller already established.
pub async fn fleet_of(app: &App, project_id: Id) -> Result<FleetHealth, AppError> {
    let (healthy_since, offline_since) = thresholds(app, app.clock.now());
    let rows =
        devices_db::counts_by_type(&app.db, project_id, healthy_since, offline_since).await?;
    let mut fleet = FleetHealth::default();
    for (device_type, total, healthy, reachable) in rows {
        let counts = FleetCounts {
            total,
            healthy,
            degraded: reachable - healthy,
            offline: total - reachable,
        };
        let overall = &mut fleet.overall;
        overall.total += counts.total;
        overall.healthy += counts.healthy;
        overall.degraded += counts.degraded;
        overall.offline += counts.offline;
        fleet.by_device_type.push((device_type, counts));
    }
    Ok(fleet)
}
