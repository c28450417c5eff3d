//! Telemetry: recording device events, the fleet, and the read side on models and versions
//! (`Model.telemetry`, `Model.trainingStats`, `ModelVersion.trainingStats`).

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::ContextExt;
use super::loaders::{ProjectKey, VersionKey};
use super::organizations::ProjectView;
use super::pagination::{self, Conn};
use super::versions::VersionView;
use crate::db::devices::{self as device_rows, Device};
use crate::db::telemetry::{self as telemetry_rows, DeviceTraining};
use crate::domain::telemetry::devices::{
    self, DeviceListFilter, FleetCounts, FleetHealth, Heartbeat,
};
use crate::domain::telemetry::inference::{
    self, InferenceSession, Percentiles, Summary, Telemetry,
};
use crate::domain::telemetry::training::{self, MetricStats, TrainingUpdate, VersionTraining};
use crate::domain::telemetry::{Batch, Receipt};
use crate::error::AppError;
use crate::values::{BigInt, DeviceHealth, Id, JsonText, TimeBucket, Timestamp};

// ---- recording ------------------------------------------------------------------------------

/// What a batch of telemetry did: events stored, retries recognised, and each refused event.
pub struct ReceiptView(pub Receipt);

#[Object(name = "TelemetryReceipt")]
impl ReceiptView {
    /// Events stored by this request.
    async fn accepted(&self) -> i32 {
        self.0.accepted as i32
    }

    /// Events whose id was already stored (retries): acknowledged, not counted again.
    async fn duplicates(&self) -> i32 {
        self.0.duplicates as i32
    }

    /// Events refused, each with its position in the batch; the others were stored.
    async fn rejected(&self) -> Vec<TelemetryRejection> {
        self.0
            .rejected
            .iter()
            .map(|r| TelemetryRejection {
                index: r.index as i32,
                code: r.error.code().to_owned(),
                field: r.error.field().map(str::to_owned),
                message: r.error.message(),
            })
            .collect()
    }
}

/// What `recordHeartbeats` did.
#[derive(SimpleObject)]
pub struct RecordHeartbeatsPayload {
    receipt: ReceiptView,
}

/// What `recordInferenceSessions` did.
#[derive(SimpleObject)]
pub struct RecordInferenceSessionsPayload {
    receipt: ReceiptView,
}

/// What `recordTrainingUpdates` did.
#[derive(SimpleObject)]
pub struct RecordTrainingUpdatesPayload {
    receipt: ReceiptView,
}

#[derive(SimpleObject)]
pub struct TelemetryRejection {
    /// The event's position in the batch, from 0.
    index: i32,
    /// The error code (`BAD_USER_INPUT`, `NOT_FOUND`, …).
    code: String,
    /// The event field at fault, when one is.
    field: Option<String>,
    message: String,
}

#[derive(InputObject)]
pub struct DeviceLabelInput {
    name: String,
    value: String,
}

#[derive(InputObject)]
pub struct HeartbeatInput {
    /// The device's project (slug or id); defaults to the key's project.
    project: Option<String>,
    /// The device's own identifier, unique in its project (`Device.externalId`).
    device_id: String,
    /// The device type or profile name (`pixel-8`, `jetson-orin`).
    device_type: Option<String>,
    os: Option<String>,
    /// The app or runtime version on the device.
    runtime_version: Option<String>,
    /// Replaces the device's labels; leave out to keep them.
    labels: Option<Vec<DeviceLabelInput>>,
}

#[derive(InputObject)]
pub struct RecordHeartbeatsInput {
    /// At most 10,000, and within the GraphQL body limit (1 MiB by default, some thousands of
    /// events): send larger batches to the REST route.
    heartbeats: Vec<HeartbeatInput>,
}

#[derive(InputObject)]
pub struct InferenceSessionInput {
    /// The client's id for the event (a UUID): a retry with the same id is not counted twice.
    id: Id,
    /// A model id or `<project slug>/<model name>`.
    model: String,
    /// A version id or label; defaults to the model's current version.
    version: Option<String>,
    /// The device's own identifier (`Device.externalId`).
    device_id: String,
    started_at: Timestamp,
    latency_ms: f64,
    time_to_first_token_ms: Option<f64>,
    input_tokens: Option<i32>,
    output_tokens: Option<i32>,
    success: bool,
    error_code: Option<String>,
}

#[derive(InputObject)]
pub struct RecordInferenceSessionsInput {
    /// At most 10,000, and within the GraphQL body limit (1 MiB by default, some thousands of
    /// events): send larger batches to the REST route.
    sessions: Vec<InferenceSessionInput>,
}

#[derive(InputObject)]
pub struct MetricValueInput {
    name: String,
    value: f64,
}

#[derive(InputObject)]
pub struct TrainingUpdateInput {
    /// The client's id for the event (a UUID): a retry with the same id is not counted twice.
    id: Id,
    /// A model id or `<project slug>/<model name>`.
    model: String,
    /// A version id or label; defaults to the model's current version.
    version: Option<String>,
    /// The device's own identifier (`Device.externalId`).
    device_id: String,
    sample_count: i32,
    metrics: Vec<MetricValueInput>,
    recorded_at: Timestamp,
}

#[derive(InputObject)]
pub struct RecordTrainingUpdatesInput {
    /// At most 10,000, and within the GraphQL body limit (1 MiB by default, some thousands of
    /// events): send larger batches to the REST route.
    updates: Vec<TrainingUpdateInput>,
}

#[derive(Default)]
pub struct TelemetryMutation;

#[Object]
impl TelemetryMutation {
    /// Records device heartbeats (registering unknown devices). Any key of the project may
    /// send, an INGEST key included; REST: `POST /v1/telemetry/heartbeats`.
    async fn record_heartbeats(
        &self,
        ctx: &Context<'_>,
        input: RecordHeartbeatsInput,
    ) -> Result<RecordHeartbeatsPayload> {
        let batch: Batch<Heartbeat> = input
            .heartbeats
            .into_iter()
            .map(|h| {
                Ok(Heartbeat {
                    project: h.project,
                    device_id: h.device_id,
                    device_type: h.device_type,
                    os: h.os,
                    runtime_version: h.runtime_version,
                    labels: h
                        .labels
                        .map(|l| l.into_iter().map(|l| (l.name, l.value)).collect()),
                })
            })
            .collect();
        let receipt = devices::record_heartbeats(ctx.app(), ctx.sender()?, batch).await?;
        Ok(RecordHeartbeatsPayload {
            receipt: ReceiptView(receipt),
        })
    }

    /// Records inference sessions; REST: `POST /v1/telemetry/inference`.
    async fn record_inference_sessions(
        &self,
        ctx: &Context<'_>,
        input: RecordInferenceSessionsInput,
    ) -> Result<RecordInferenceSessionsPayload> {
        let batch: Batch<InferenceSession> = input
            .sessions
            .into_iter()
            .map(|s| {
                Ok(InferenceSession {
                    id: s.id,
                    model: s.model,
                    version: s.version,
                    device_id: s.device_id,
                    started_at: s.started_at,
                    latency_ms: s.latency_ms,
                    time_to_first_token_ms: s.time_to_first_token_ms,
                    input_tokens: s.input_tokens.map(i64::from),
                    output_tokens: s.output_tokens.map(i64::from),
                    success: s.success,
                    error_code: s.error_code,
                })
            })
            .collect();
        let receipt = inference::record(ctx.app(), ctx.sender()?, batch).await?;
        Ok(RecordInferenceSessionsPayload {
            receipt: ReceiptView(receipt),
        })
    }

    /// Records training updates; REST: `POST /v1/telemetry/training-updates`.
    async fn record_training_updates(
        &self,
        ctx: &Context<'_>,
        input: RecordTrainingUpdatesInput,
    ) -> Result<RecordTrainingUpdatesPayload> {
        let batch: Batch<TrainingUpdate> = input
            .updates
            .into_iter()
            .map(|u| {
                Ok(TrainingUpdate {
                    id: u.id,
                    model: u.model,
                    version: u.version,
                    device_id: u.device_id,
                    sample_count: i64::from(u.sample_count),
                    metrics: u.metrics.into_iter().map(|m| (m.name, m.value)).collect(),
                    recorded_at: u.recorded_at,
                })
            })
            .collect();
        let receipt = training::record(ctx.app(), ctx.sender()?, batch).await?;
        Ok(RecordTrainingUpdatesPayload {
            receipt: ReceiptView(receipt),
        })
    }
}

// ---- the fleet --------------------------------------------------------------------------------

pub struct DeviceView(pub Device);

impl From<Device> for DeviceView {
    fn from(device: Device) -> Self {
        DeviceView(device)
    }
}

#[derive(SimpleObject)]
pub struct DeviceLabel {
    name: String,
    value: String,
}

/// A device of a project's fleet, registered by its first heartbeat or event.
#[Object(name = "Device")]
impl DeviceView {
    pub async fn id(&self) -> &Id {
        &self.0.id
    }

    /// The device's own identifier, unique in its project (what events call `deviceId`).
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    async fn project_id(&self) -> &Id {
        &self.0.project_id
    }

    async fn project(&self, ctx: &Context<'_>) -> Result<ProjectView> {
        Ok(ctx
            .loader()
            .load_one(ProjectKey(self.0.project_id))
            .await?
            .map(ProjectView)
            .ok_or(AppError::NotFound("project"))?)
    }

    /// The device type or profile name, as its last heartbeat gave it.
    async fn device_type(&self) -> Option<&str> {
        self.0.device_type.as_deref()
    }

    async fn os(&self) -> Option<&str> {
        self.0.os.as_deref()
    }

    /// The app or runtime version on the device.
    async fn runtime_version(&self) -> Option<&str> {
        self.0.runtime_version.as_deref()
    }

    async fn labels(&self) -> Vec<DeviceLabel> {
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(&self.0.labels)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| DeviceLabel { name, value })
            .collect()
    }

    async fn first_seen_at(&self) -> Timestamp {
        self.0.first_seen_at
    }

    /// Null until the device sends a heartbeat (events alone do not make it healthy).
    async fn last_heartbeat_at(&self) -> Option<Timestamp> {
        self.0.last_heartbeat_at
    }

    /// From the age of the last heartbeat and the server's thresholds (by default HEALTHY
    /// within 5 minutes, DEGRADED within an hour, OFFLINE after, or without any).
    async fn health(&self, ctx: &Context<'_>) -> DeviceHealth {
        let app = ctx.app();
        devices::health(app, self.0.last_heartbeat_at, app.clock.now())
    }
}

#[derive(InputObject, Default)]
pub struct DeviceFilterInput {
    project_id: Option<Id>,
    device_type: Option<String>,
    health: Option<DeviceHealth>,
}

/// Device counts by health.
#[derive(SimpleObject)]
pub struct FleetSummary {
    total: i64,
    healthy: i64,
    degraded: i64,
    offline: i64,
}

impl From<FleetCounts> for FleetSummary {
    fn from(c: FleetCounts) -> Self {
        FleetSummary {
            total: c.total,
            healthy: c.healthy,
            degraded: c.degraded,
            offline: c.offline,
        }
    }
}

#[derive(SimpleObject)]
pub struct DeviceTypeHealth {
    /// Null for devices that never named their type.
    device_type: Option<String>,
    counts: FleetSummary,
}

pub struct FleetHealthView(FleetHealth);

/// A project's fleet by health state, overall and per device type.
#[Object(name = "FleetHealth")]
impl FleetHealthView {
    async fn total(&self) -> i64 {
        self.0.overall.total
    }

    async fn healthy(&self) -> i64 {
        self.0.overall.healthy
    }

    async fn degraded(&self) -> i64 {
        self.0.overall.degraded
    }

    async fn offline(&self) -> i64 {
        self.0.overall.offline
    }

    async fn by_device_type(&self) -> Vec<DeviceTypeHealth> {
        self.0
            .by_device_type
            .iter()
            .map(|(device_type, counts)| DeviceTypeHealth {
                device_type: device_type.clone(),
                counts: (*counts).into(),
            })
            .collect()
    }
}

#[derive(Default)]
pub struct TelemetryQuery;

// One parameter per GraphQL argument: Relay lists take four besides their filters.
#[allow(clippy::too_many_arguments)]
#[Object]
impl TelemetryQuery {
    /// Devices of the projects this key sees, by external id.
    #[graphql(
        complexity = "first.or(last).unwrap_or(50).clamp(0, 1000) as usize * child_complexity"
    )]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeviceFilterInput>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<DeviceView>> {
        let page = pagination::request(first, after, last, before)?;
        let filter = filter.unwrap_or_default();
        let result = devices::list(
            ctx.app(),
            ctx.caller()?,
            DeviceListFilter {
                project_id: filter.project_id,
                device_type: filter.device_type,
                health: filter.health,
            },
            &page,
            ctx.wants_total(),
        )
        .await?;
        Ok(pagination::connection(result, device_rows::cursor))
    }

    async fn device(&self, ctx: &Context<'_>, id: Id) -> Result<DeviceView> {
        Ok(DeviceView(
            devices::visible_device(ctx.app(), ctx.caller()?, id).await?,
        ))
    }

    /// The project's devices counted by health, overall and per device type.
    async fn fleet_health(&self, ctx: &Context<'_>, project_id: Id) -> Result<FleetHealthView> {
        Ok(FleetHealthView(
            devices::fleet_health(ctx.app(), ctx.caller()?, project_id).await?,
        ))
    }
}

// ---- inference telemetry ------------------------------------------------------------------

#[derive(InputObject)]
pub struct TimeWindowInput {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The distribution of one measure, in milliseconds.
pub struct DistributionView {
    count: i64,
    sum: f64,
    percentiles: Percentiles,
}

#[Object(name = "Distribution")]
impl DistributionView {
    /// How many values were measured.
    async fn count(&self) -> BigInt {
        BigInt(self.count)
    }

    /// Exact; null when nothing was measured.
    async fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The median: the value at rank ⌊0.5·(n−1)⌋ of the sorted values. Exact when
    /// `percentilesExact`; otherwise read from summaries within 1 % relative error.
    async fn p50(&self) -> Option<f64> {
        self.percentiles.p50
    }

    /// The value at rank ⌊0.95·(n−1)⌋; within 1 % relative error unless `percentilesExact`.
    async fn p95(&self) -> Option<f64> {
        self.percentiles.p95
    }

    /// The value at rank ⌊0.99·(n−1)⌋; within 1 % relative error unless `percentilesExact`.
    async fn p99(&self) -> Option<f64> {
        self.percentiles.p99
    }
}

pub struct InferenceStatsView(Summary);

/// Inference counted and measured over a window or one bucket of it.
#[Object(name = "InferenceStats")]
impl InferenceStatsView {
    async fn session_count(&self) -> BigInt {
        BigInt(self.0.sessions)
    }

    async fn success_count(&self) -> BigInt {
        BigInt(self.0.successes)
    }

    async fn error_count(&self) -> BigInt {
        BigInt(self.0.errors())
    }

    /// Successes per session; null without sessions.
    async fn success_rate(&self) -> Option<f64> {
        self.0.success_rate()
    }

    /// Errors per session; null without sessions.
    async fn error_rate(&self) -> Option<f64> {
        (self.0.sessions > 0).then(|| self.0.errors() as f64 / self.0.sessions as f64)
    }

    async fn latency_ms(&self) -> DistributionView {
        DistributionView {
            count: self.0.sessions,
            sum: self.0.latency_sum,
            percentiles: self.0.latency,
        }
    }

    /// Over the sessions that reported a time to first token.
    async fn time_to_first_token_ms(&self) -> DistributionView {
        DistributionView {
            count: self.0.ttft_count,
            sum: self.0.ttft_sum,
            percentiles: self.0.ttft,
        }
    }

    async fn input_tokens(&self) -> BigInt {
        BigInt(self.0.input_tokens)
    }

    async fn output_tokens(&self) -> BigInt {
        BigInt(self.0.output_tokens)
    }

    /// Whether the percentiles were computed from the raw sessions (windows of at most
    /// 10,000 sessions inside the raw retention) rather than from summaries.
    async fn percentiles_exact(&self) -> bool {
        self.0.exact
    }
}

pub struct VersionInferenceView {
    version_id: Id,
    summary: Summary,
}

#[Object(name = "VersionInferenceStats")]
impl VersionInferenceView {
    async fn version_id(&self) -> &Id {
        &self.version_id
    }

    async fn model_version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        Ok(ctx
            .loader()
            .load_one(VersionKey(self.version_id))
            .await?
            .map(VersionView))
    }

    async fn stats(&self) -> InferenceStatsView {
        InferenceStatsView(self.summary.clone())
    }
}

#[derive(SimpleObject)]
pub struct TelemetryBucket {
    /// The bucket's start (UTC-aligned); the first and last buckets count only the part
    /// inside the window.
    start: Timestamp,
    stats: InferenceStatsView,
}

pub struct InferenceTelemetryView(pub Telemetry);

/// A model's inference in the field over a window. The window is read in whole UTC minutes:
/// every minute that overlaps `[from, to)` counts.
#[Object(name = "InferenceTelemetry")]
impl InferenceTelemetryView {
    /// The window as read: `from` rounded down and `to` up to the minute.
    async fn from(&self) -> Timestamp {
        self.0.from
    }

    async fn to(&self) -> Timestamp {
        self.0.to
    }

    /// The version the answer is limited to, if one was asked for.
    async fn version_id(&self) -> Option<&Id> {
        self.0.version_id.as_ref()
    }

    async fn totals(&self) -> InferenceStatsView {
        InferenceStatsView(self.0.total.clone())
    }

    /// Sessions per minute over the window.
    async fn throughput_per_minute(&self) -> f64 {
        self.0.throughput_per_minute()
    }

    /// Per version with sessions in the window, newest version first.
    async fn by_version(&self) -> Vec<VersionInferenceView> {
        self.0
            .by_version
            .iter()
            .map(|(version_id, summary)| VersionInferenceView {
                version_id: *version_id,
                summary: summary.clone(),
            })
            .collect()
    }

    /// The window in buckets, every bucket present (empty ones count zero); at most 10,080
    /// buckets. Percentiles here always come from summaries (1 % relative error).
    #[graphql(complexity = "500 + child_complexity")]
    async fn time_series(
        &self,
        ctx: &Context<'_>,
        bucket: TimeBucket,
    ) -> Result<Vec<TelemetryBucket>> {
        Ok(inference::series(ctx.app(), &self.0, bucket)
            .await?
            .into_iter()
            .map(|(start, summary)| TelemetryBucket {
                start,
                stats: InferenceStatsView(summary),
            })
            .collect())
    }

    /// The devices of the model's project by health now, whatever they ran.
    async fn fleet(&self, ctx: &Context<'_>) -> Result<FleetSummary> {
        let fleet = devices::fleet_of(ctx.app(), self.0.model.project_id).await?;
        Ok(FleetSummary::from(fleet.overall))
    }
}

/// `Model.telemetry`.
pub async fn model_telemetry(
    ctx: &Context<'_>,
    model_id: Id,
    window: TimeWindowInput,
    version_id: Option<Id>,
) -> Result<InferenceTelemetryView> {
    Ok(InferenceTelemetryView(
        inference::telemetry(
            ctx.app(),
            ctx.caller()?,
            model_id,
            window.from,
            window.to,
            version_id,
        )
        .await?,
    ))
}

// ---- training statistics ------------------------------------------------------------------

pub struct VersionTrainingView(pub VersionTraining);

/// A version's training updates, all time.
#[Object(name = "VersionTrainingSummary")]
impl VersionTrainingView {
    async fn version_id(&self) -> &Id {
        &self.0.version_id
    }

    async fn model_version(&self, ctx: &Context<'_>) -> Result<Option<VersionView>> {
        Ok(ctx
            .loader()
            .load_one(VersionKey(self.0.version_id))
            .await?
            .map(VersionView))
    }

    async fn update_count(&self) -> BigInt {
        BigInt(self.0.updates)
    }

    async fn sample_count(&self) -> BigInt {
        BigInt(self.0.samples)
    }

    /// Distinct devices that sent updates.
    async fn device_count(&self) -> i64 {
        self.0.devices
    }

    /// The metrics of the newest update (by `recordedAt`); null without updates.
    async fn latest_metrics(&self) -> Option<JsonText> {
        self.0.latest.as_ref().map(|(m, _)| JsonText(m.clone()))
    }

    async fn latest_recorded_at(&self) -> Option<Timestamp> {
        self.0.latest.as_ref().map(|(_, t)| *t)
    }
}

#[derive(SimpleObject)]
pub struct TrainingMetricStats {
    name: String,
    /// Updates that reported the metric.
    count: BigInt,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    /// Within 1 % relative error of the value at rank ⌊0.5·(n−1)⌋.
    p50: Option<f64>,
    /// Within 1 % relative error of the value at rank ⌊0.95·(n−1)⌋.
    p95: Option<f64>,
    /// Within 1 % relative error of the value at rank ⌊0.99·(n−1)⌋.
    p99: Option<f64>,
}

impl From<MetricStats> for TrainingMetricStats {
    fn from(m: MetricStats) -> Self {
        TrainingMetricStats {
            name: m.name,
            count: BigInt(m.count),
            min: m.min,
            max: m.max,
            mean: m.mean,
            p50: m.p50,
            p95: m.p95,
            p99: m.p99,
        }
    }
}

pub struct DeviceTrainingView(DeviceTraining);

impl From<DeviceTraining> for DeviceTrainingView {
    fn from(row: DeviceTraining) -> Self {
        DeviceTrainingView(row)
    }
}

/// One device's updates to a version.
#[Object(name = "DeviceTrainingStats")]
impl DeviceTrainingView {
    /// The device's own identifier (`Device.externalId`).
    async fn device_id(&self) -> &str {
        &self.0.device_external_id
    }

    async fn update_count(&self) -> BigInt {
        BigInt(self.0.updates)
    }

    async fn sample_count(&self) -> BigInt {
        BigInt(self.0.samples)
    }

    async fn latest_metrics(&self) -> JsonText {
        JsonText(serde_json::from_str(&self.0.latest_metrics).unwrap_or_default())
    }

    async fn latest_recorded_at(&self) -> Timestamp {
        self.0.latest_recorded_at
    }
}

pub struct VersionTrainingDetailView {
    total: VersionTraining,
    metrics: Vec<MetricStats>,
}

/// A version's training updates in detail; zeros when it received none.
#[Object(name = "VersionTrainingStats")]
impl VersionTrainingDetailView {
    async fn update_count(&self) -> BigInt {
        BigInt(self.total.updates)
    }

    async fn sample_count(&self) -> BigInt {
        BigInt(self.total.samples)
    }

    async fn device_count(&self) -> i64 {
        self.total.devices
    }

    async fn latest_metrics(&self) -> Option<JsonText> {
        self.total.latest.as_ref().map(|(m, _)| JsonText(m.clone()))
    }

    async fn latest_recorded_at(&self) -> Option<Timestamp> {
        self.total.latest.as_ref().map(|(_, t)| *t)
    }

    /// Per metric name, by name.
    async fn metrics(&self) -> Vec<TrainingMetricStats> {
        self.metrics.iter().cloned().map(Into::into).collect()
    }

    /// Per device, by device identifier.
    #[graphql(
        complexity = "first.or(last).unwrap_or(50).clamp(0, 1000) as usize * child_complexity"
    )]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<DeviceTrainingView>> {
        let page = pagination::request(first, after, last, before)?;
        let rows =
            training::device_page(ctx.app(), self.total.version_id, &page, ctx.wants_total())
                .await?;
        Ok(pagination::connection(
            rows,
            telemetry_rows::device_training_cursor,
        ))
    }
}

/// `Model.trainingStats`.
pub async fn model_training(ctx: &Context<'_>, model_id: Id) -> Result<Vec<VersionTrainingView>> {
    Ok(training::model_stats(ctx.app(), ctx.caller()?, model_id)
        .await?
        .into_iter()
        .map(VersionTrainingView)
        .collect())
}

/// `ModelVersion.trainingStats`.
pub async fn version_training(
    ctx: &Context<'_>,
    version_id: Id,
) -> Result<VersionTrainingDetailView> {
    let (total, metrics) = training::version_stats(ctx.app(), ctx.caller()?, version_id).await?;
    Ok(VersionTrainingDetailView { total, metrics })
}
