//! Inference sessions: ingest, and the answers over a window (counts, rates, latency and
//! time-to-first-token percentiles, tokens, per version, in time buckets).
//!
//! A window is read in whole UTC minutes: every minute that overlaps `[from, to)` counts.
//! Its answer merges the summary rows that tile it, coarsest first (whole days, then the hours
//! and minutes at its edges), so its cost grows with the window's edges, not its events. When
//! the window holds few sessions and lies inside the raw retention, the percentiles are
//! computed exactly from the raw rows instead.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::DurationRound;

use super::sketch::{Sketch, exact_quantile};
use super::{
    Batch, Receipt, Resolver, Sifted, check_event_time, count, device_id, measure, new_devices,
    retention,
};
use crate::app::App;
use crate::auth::Principal;
use crate::db::devices::Device;
use crate::db::models::Model;
use crate::db::telemetry::{
    self as telemetry_db, InferenceSessionRow, Inserted, Rollup, RollupKey, SessionBatch, Stored,
};
use crate::domain::models as model_rules;
use crate::domain::validate;
use crate::error::AppError;
use crate::values::{Id, Role, TimeBucket, Timestamp};

/// Windows holding at most this many sessions (within the raw retention) get exact
/// percentiles from the raw rows.
pub const EXACT_LIMIT: i64 = 10_000;

/// Longest window a query may ask for.
pub const MAX_WINDOW_DAYS: i64 = 1_830;

/// Most points a time series may have.
pub const MAX_POINTS: i64 = 10_080;

/// One inference session as a device reports it.
#[derive(Debug, Clone)]
pub struct InferenceSession {
    /// The client's id for this event: a retry sends the same one.
    pub id: Id,
    /// A model id or `<project>/<model name>`.
    pub model: String,
    /// A version id or label; absent: the model's current version.
    pub version: Option<String>,
    pub device_id: String,
    pub started_at: Timestamp,
    pub latency_ms: f64,
    pub time_to_first_token_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub success: bool,
    pub error_code: Option<String>,
}

pub fn width(bucket: TimeBucket) -> chrono::Duration {
    match bucket {
        TimeBucket::Minute => chrono::Duration::minutes(1),
        TimeBucket::Hour => chrono::Duration::hours(1),
        TimeBucket::Day => chrono::Duration::days(1),
    }
}

pub fn floor(t: Timestamp, bucket: TimeBucket) -> Timestamp {
    Timestamp(t.0.duration_trunc(width(bucket)).unwrap_or(t.0))
}

fn ceil(t: Timestamp, bucket: TimeBucket) -> Timestamp {
    let down = floor(t, bucket);
    if down == t {
        t
    } else {
        Timestamp(down.0 + width(bucket))
    }
}

/// The summary ranges that tile `[a, b)` (minute-aligned), using buckets up to `top` wide.
fn cover(a: Timestamp, b: Timestamp, top: TimeBucket) -> Vec<(TimeBucket, Timestamp, Timestamp)> {
    if a >= b {
        return Vec::new();
    }
    let lower = match top {
        TimeBucket::Minute => return vec![(TimeBucket::Minute, a, b)],
        TimeBucket::Hour => TimeBucket::Minute,
        TimeBucket::Day => TimeBucket::Hour,
    };
    let (start, end) = (ceil(a, top), floor(b, top));
    if start >= end {
        return cover(a, b, lower);
    }
    let mut ranges = cover(a, start, lower);
    ranges.push((top, start, end));
    ranges.extend(cover(end, b, lower));
    ranges
}

fn check_session(
    app: &App,
    session: &InferenceSession,
    now: Timestamp,
) -> Result<(String, Option<String>), AppError> {
    let device = device_id("deviceId", &session.device_id)?;
    check_event_time(app, "startedAt", session.started_at, now)?;
    measure("latencyMs", session.latency_ms)?;
    if let Some(ttft) = session.time_to_first_token_ms {
        measure("timeToFirstTokenMs", ttft)?;
        if ttft > session.latency_ms {
            return Err(AppError::bad_input(
                "timeToFirstTokenMs",
                "must not exceed latencyMs",
            ));
        }
    }
    if let Some(n) = session.input_tokens {
        count("inputTokens", n)?;
    }
    if let Some(n) = session.output_tokens {
        count("outputTokens", n)?;
    }
    let error_code = match &session.error_code {
        Some(code) => {
            let code = validate::name("errorCode", code)?;
            validate::bounded("errorCode", &code, super::DEVICE_ID_MAX)?;
            Some(code)
        }
        None => None,
    };
    Ok((device, error_code))
}

/// Stores a batch of sessions (see the module contract in `telemetry`).
pub async fn record(
    app: &App,
    caller: &Principal,
    batch: Batch<InferenceSession>,
) -> Result<Receipt, AppError> {
    let now = app.clock.now();
    let mut resolver = Resolver::new(app, caller);
    let mut sifted = Sifted::new(batch.len())?;
    for (index, item) in batch.into_iter().enumerate() {
        let checked = match item {
            Ok(session) => checked_row(app, &mut resolver, session, now).await,
            Err(e) => Err(e),
        };
        sifted.take(index, checked)?;
    }
    let Sifted {
        good: rows,
        mut receipt,
    } = sifted;
    if rows.is_empty() {
        return Ok(receipt);
    }
    // Repeats of an id within the batch, like those across batches, are dropped where the
    // batch is written (`write_together`), and count as duplicates.
    let valid = rows.len();
    let devices = new_devices(
        app,
        rows.iter()
            .map(|r| (r.project_id, r.device_external_id.as_str())),
        now,
    );
    let batch = SessionBatch { rows, devices };
    let app_for_write = app.clone();
    let stored = app
        .session_writes
        .submit(batch, move |batches| write_batches(app_for_write, batches))
        .await?;
    receipt.accepted = stored;
    receipt.duplicates = valid - stored;
    Ok(receipt)
}

/// Writes several requests' sessions (see [`crate::db::group`]); answers, per batch, how many
/// of its sessions were new. They go in one transaction; if that fails and held more than one
/// batch, each is written on its own, so a batch at fault (its project deleted meanwhile, say)
/// fails alone instead of failing every request it was grouped with.
async fn write_batches(app: App, batches: Vec<SessionBatch>) -> Vec<Result<usize, AppError>> {
    let batches = Arc::new(batches);
    let all: Vec<usize> = (0..batches.len()).collect();
    match write_together(&app, &batches, all).await {
        Ok(stored) => stored.into_iter().map(Ok).collect(),
        Err(e) if batches.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut answers = Vec::with_capacity(batches.len());
            for b in 0..batches.len() {
                let alone = write_together(&app, &batches, vec![b]).await;
                answers.push(alone.map(|stored| stored[0]));
            }
            answers
        }
    }
}

/// Writes the batches `which` in one transaction: their devices, their sessions, and what those
/// add to the summaries; answers how many sessions of each were new.
async fn write_together(
    app: &App,
    batches: &Arc<Vec<SessionBatch>>,
    which: Vec<usize>,
) -> Result<Vec<usize>, AppError> {
    // Devices and sessions in key order across the batches, so concurrent transactions lock
    // alike and no statement holds a key twice. The sort is stable: a session sent twice, in
    // one batch or in two, belongs to its first sending (the other is a duplicate).
    let devices: Vec<Device> = which
        .iter()
        .flat_map(|&b| batches[b].devices.iter())
        .map(|d| ((d.project_id, d.external_id.as_str()), d))
        .collect::<BTreeMap<_, _>>()
        .into_values()
        .cloned()
        .collect();
    let mut order: Vec<(usize, usize)> = which
        .iter()
        .flat_map(|&b| (0..batches[b].rows.len()).map(move |i| (b, i)))
        .collect();
    let key = |&(b, i): &(usize, usize)| (batches[b].rows[i].project_id, batches[b].rows[i].id);
    order.sort_by_key(key);
    order.dedup_by_key(|e| key(e));
    let (devices, order) = (Arc::new(devices), Arc::new(order));
    // First as if no session were stored before (what a batch almost always is, and cheaper
    // to write), then, should one be, again skipping those (see `Stored::Refuse`).
    let mut attempt = Stored::Refuse;
    let stored = loop {
        let (batches, devices, order) = (
            Arc::clone(batches),
            Arc::clone(&devices),
            Arc::clone(&order),
        );
        let refused = Arc::new(AtomicBool::new(false));
        let refusal = Arc::clone(&refused);
        let written = app
            .db
            .bulk_transaction(async move |tx| {
                crate::db::devices::register(tx, &devices).await?;
                let rows: Vec<&InferenceSessionRow> =
                    order.iter().map(|&(b, i)| &batches[b].rows[i]).collect();
                // `None`: every row was new.
                let keys: Option<HashSet<(Id, Id)>> =
                    match telemetry_db::insert_sessions(tx, &rows, attempt).await? {
                        Inserted::All => None,
                        Inserted::Only(keys) => Some(keys.into_iter().collect()),
                        Inserted::Refused => {
                            refusal.store(true, Ordering::Relaxed);
                            return Err(AppError::conflict("a session was stored before"));
                        }
                    };
                let mut stored = vec![0; batches.len()];
                let mut deltas: BTreeMap<RollupKey, Delta> = BTreeMap::new();
                for (&(b, _), row) in order.iter().zip(&rows) {
                    if keys
                        .as_ref()
                        .is_none_or(|k| k.contains(&(row.project_id, row.id)))
                    {
                        stored[b] += 1;
                        add_to_minute(&mut deltas, row);
                    }
                }
                fold_minutes(&mut deltas)?;
                // Each summary row is read, merged and written once, under its model's lock.
                let mut models: Vec<Id> = deltas.keys().map(|key| key.0).collect();
                models.dedup();
                let lock = telemetry_db::lock_rollups(tx, &models).await?;
                let keys: Vec<RollupKey> = deltas.keys().copied().collect();
                let mut existing: HashMap<RollupKey, Rollup> =
                    telemetry_db::stored_rollups(tx, &lock, &keys)
                        .await?
                        .into_iter()
                        .map(|row| (row.key(), row))
                        .collect();
                let mut merged = Vec::with_capacity(deltas.len());
                for (key, delta) in deltas {
                    let mut total = match existing.remove(&key) {
                        Some(row) => Delta::stored(row)?,
                        None => Delta::default(),
                    };
                    total.absorb(&delta)?;
                    merged.push(total.into_row(key));
                }
                telemetry_db::write_rollups(tx, &lock, &merged).await?;
                Ok(stored)
            })
            .await;
        match written {
            Err(_) if refused.load(Ordering::Relaxed) => attempt = Stored::Skip,
            written => break written?,
        }
    };
    app.known_devices.remember(&devices);
    Ok(which.into_iter().map(|b| stored[b]).collect())
}

/// Adds `row` to its minute's summary row; [`fold_minutes`] then adds the minutes to their hours
/// and days.
fn add_to_minute(deltas: &mut BTreeMap<RollupKey, Delta>, row: &InferenceSessionRow) {
    let key = (
        row.model_id,
        TimeBucket::Minute,
        floor(row.started_at, TimeBucket::Minute),
        row.model_version_id,
    );
    deltas.entry(key).or_default().add(row);
}

/// Adds each minute's delta to its hour's and day's: merging a minute's sketch costs its few
/// buckets, where adding each session to every sketch again cost a logarithm per session.
fn fold_minutes(deltas: &mut BTreeMap<RollupKey, Delta>) -> Result<(), AppError> {
    let mut coarser: BTreeMap<RollupKey, Delta> = BTreeMap::new();
    for (&(model, _, start, version), minute) in deltas.iter() {
        for bucket in [TimeBucket::Hour, TimeBucket::Day] {
            let key = (model, bucket, floor(start, bucket), version);
            coarser.entry(key).or_default().absorb(minute)?;
        }
    }
    deltas.extend(coarser);
    Ok(())
}

async fn checked_row(
    app: &App,
    resolver: &mut Resolver<'_>,
    session: InferenceSession,
    now: Timestamp,
) -> Result<InferenceSessionRow, AppError> {
    let (device, error_code) = check_session(app, &session, now)?;
    let target = resolver
        .target(&session.model, session.version.as_deref())
        .await?;
    Ok(InferenceSessionRow {
        project_id: target.project_id,
        id: session.id,
        model_id: target.model_id,
        model_version_id: target.version_id,
        device_external_id: device,
        started_at: session.started_at,
        latency_ms: session.latency_ms,
        ttft_ms: session.time_to_first_token_ms,
        input_tokens: session.input_tokens,
        output_tokens: session.output_tokens,
        success: session.success,
        error_code,
    })
}

/// What a batch adds to one summary row.
#[derive(Default)]
struct Delta {
    sessions: i64,
    successes: i64,
    latency_sum: f64,
    ttft_count: i64,
    ttft_sum: f64,
    input_tokens: i64,
    output_tokens: i64,
    latency: Sketch,
    ttft: Sketch,
}

impl Delta {
    fn add(&mut self, row: &InferenceSessionRow) {
        self.sessions = self.sessions.saturating_add(1);
        self.successes = self.successes.saturating_add(i64::from(row.success));
        self.latency_sum += row.latency_ms;
        self.latency.add(row.latency_ms);
        if let Some(ttft) = row.ttft_ms {
            self.ttft_count = self.ttft_count.saturating_add(1);
            self.ttft_sum += ttft;
            self.ttft.add(ttft);
        }
        self.input_tokens = self
            .input_tokens
            .saturating_add(row.input_tokens.unwrap_or(0));
        self.output_tokens = self
            .output_tokens
            .saturating_add(row.output_tokens.unwrap_or(0));
    }

    fn absorb(&mut self, other: &Delta) -> Result<(), AppError> {
        self.sessions = self.sessions.saturating_add(other.sessions);
        self.successes = self.successes.saturating_add(other.successes);
        self.latency_sum += other.latency_sum;
        self.ttft_count = self.ttft_count.saturating_add(other.ttft_count);
        self.ttft_sum += other.ttft_sum;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.latency.merge(&other.latency)?;
        self.ttft.merge(&other.ttft)
    }

    #[cfg(test)]
    fn clone_row(&self, key: RollupKey) -> Rollup {
        let mut copy = Delta::default();
        copy.absorb(self).expect("one sketch configuration");
        copy.into_row(key)
    }

    /// What a stored summary row holds, to add a batch's delta to.
    fn stored(row: Rollup) -> Result<Delta, AppError> {
        Ok(Delta {
            sessions: row.sessions,
            successes: row.successes,
            latency_sum: row.latency_sum,
            ttft_count: row.ttft_count,
            ttft_sum: row.ttft_sum,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            latency: Sketch::decode_or_empty(row.latency_sketch.as_deref())?,
            ttft: Sketch::decode_or_empty(row.ttft_sketch.as_deref())?,
        })
    }

    /// The summary row `key` holding this.
    fn into_row(self, key: RollupKey) -> Rollup {
        let (model_id, granularity, bucket_start, model_version_id) = key;
        Rollup {
            model_id,
            granularity,
            bucket_start,
            model_version_id,
            sessions: self.sessions,
            successes: self.successes,
            latency_sum: self.latency_sum,
            ttft_count: self.ttft_count,
            ttft_sum: self.ttft_sum,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            latency_sketch: Some(self.latency.encode()),
            ttft_sketch: (self.ttft.count() > 0).then(|| self.ttft.encode()),
        }
    }
}

/// p50, p95 and p99 of one measure; all `None` when nothing was measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of_sketch(s: &Sketch) -> Percentiles {
        Percentiles {
            p50: s.quantile(0.5),
            p95: s.quantile(0.95),
            p99: s.quantile(0.99),
        }
    }

    fn of_values(mut values: Vec<f64>) -> Percentiles {
        values.sort_by(f64::total_cmp);
        Percentiles {
            p50: exact_quantile(&values, 0.5),
            p95: exact_quantile(&values, 0.95),
            p99: exact_quantile(&values, 0.99),
        }
    }
}

/// Inference over a window (or one bucket of it).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub sessions: i64,
    pub successes: i64,
    pub latency_sum: f64,
    pub ttft_count: i64,
    pub ttft_sum: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub latency: Percentiles,
    pub ttft: Percentiles,
    /// Whether the percentiles were computed from raw rows rather than sketches.
    pub exact: bool,
}

impl Summary {
    pub fn errors(&self) -> i64 {
        self.sessions - self.successes
    }

    pub fn success_rate(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.successes as f64 / self.sessions as f64)
    }

    pub fn latency_mean(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.latency_sum / self.sessions as f64)
    }

    pub fn ttft_mean(&self) -> Option<f64> {
        (self.ttft_count > 0).then(|| self.ttft_sum / self.ttft_count as f64)
    }
}

/// Summary rows merged.
#[derive(Default)]
struct Accumulator {
    summary: Summary,
    latency: Sketch,
    ttft: Sketch,
}

impl Accumulator {
    fn add(&mut self, row: &telemetry_db::Rollup) -> Result<(), AppError> {
        let s = &mut self.summary;
        s.sessions += row.sessions;
        s.successes += row.successes;
        s.latency_sum += row.latency_sum;
        s.ttft_count += row.ttft_count;
        s.ttft_sum += row.ttft_sum;
        s.input_tokens += row.input_tokens;
        s.output_tokens += row.output_tokens;
        if let Some(bytes) = &row.latency_sketch {
            self.latency.merge(&Sketch::decode(bytes)?)?;
        }
        if let Some(bytes) = &row.ttft_sketch {
            self.ttft.merge(&Sketch::decode(bytes)?)?;
        }
        Ok(())
    }

    fn finish(self) -> Summary {
        Summary {
            latency: Percentiles::of_sketch(&self.latency),
            ttft: Percentiles::of_sketch(&self.ttft),
            ..self.summary
        }
    }
}

/// A model's inference over a window, as asked.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub model: Model,
    pub version_id: Option<Id>,
    /// The window as read: whole minutes.
    pub from: Timestamp,
    pub to: Timestamp,
    pub total: Summary,
    /// Per version with sessions in the window, newest version id first.
    pub by_version: Vec<(Id, Summary)>,
}

impl Telemetry {
    pub fn minutes(&self) -> i64 {
        (self.to.0 - self.from.0).num_minutes().max(1)
    }

    pub fn throughput_per_minute(&self) -> f64 {
        self.total.sessions as f64 / self.minutes() as f64
    }
}

/// The window `[from, to)` widened to whole minutes, checked.
fn minutes_of(from: Timestamp, to: Timestamp) -> Result<(Timestamp, Timestamp), AppError> {
    if from >= to {
        return Err(AppError::bad_input("window", "`from` must be before `to`"));
    }
    if to.0 - from.0 > chrono::Duration::days(MAX_WINDOW_DAYS) {
        return Err(AppError::bad_input(
            "window",
            format!("a window spans at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok((
        floor(from, TimeBucket::Minute),
        ceil(to, TimeBucket::Minute),
    ))
}

/// A model's inference telemetry over `[from, to)`, optionally one version's. A window
/// without sessions answers zeros and no percentiles.
pub async fn telemetry(
    app: &App,
    caller: &Principal,
    model_id: Id,
    from: Timestamp,
    to: Timestamp,
    version_id: Option<Id>,
) -> Result<Telemetry, AppError> {
    let model = model_rules::visible_model(&app.db, caller, model_id, Role::Viewer).await?;
    let (from, to) = minutes_of(from, to)?;
    let rows = telemetry_db::rollups(
        &app.db,
        model.id,
        version_id,
        &cover(from, to, TimeBucket::Day),
    )
    .await?;
    let mut total = Accumulator::default();
    let mut versions: BTreeMap<Id, Accumulator> = BTreeMap::new();
    for row in &rows {
        total.add(row)?;
        versions.entry(row.model_version_id).or_default().add(row)?;
    }
    let mut telemetry = Telemetry {
        model,
        version_id,
        from,
        to,
        total: total.finish(),
        by_version: versions
            .into_iter()
            .rev()
            .map(|(id, acc)| (id, acc.finish()))
            .collect(),
    };
    let raw_since = app.clock.now().0 - retention(app) + chrono::Duration::hours(1);
    if telemetry.total.sessions > 0
        && telemetry.total.sessions <= EXACT_LIMIT
        && from.0 >= raw_since
    {
        exact_percentiles(app, &mut telemetry).await?;
    }
    Ok(telemetry)
}

async fn exact_percentiles(app: &App, telemetry: &mut Telemetry) -> Result<(), AppError> {
    let measures = telemetry_db::session_measures(
        &app.db,
        telemetry.model.id,
        telemetry.version_id,
        telemetry.from,
        telemetry.to,
    )
    .await?;
    let mut per_version: HashMap<Id, (Vec<f64>, Vec<f64>)> = HashMap::new();
    let (mut latency, mut ttft) = (Vec::new(), Vec::new());
    for (version, l, t) in measures {
        let entry = per_version.entry(version).or_default();
        latency.push(l);
        entry.0.push(l);
        if let Some(t) = t {
            ttft.push(t);
            entry.1.push(t);
        }
    }
    let exact = |summary: &mut Summary, latency: Vec<f64>, ttft: Vec<f64>| {
        summary.latency = Percentiles::of_values(latency);
        summary.ttft = Percentiles::of_values(ttft);
        summary.exact = true;
    };
    exact(&mut telemetry.total, latency, ttft);
    for (version, summary) in &mut telemetry.by_version {
        let (l, t) = per_version.remove(version).unwrap_or_default();
        exact(summary, l, t);
    }
    Ok(())
}

/// The window in buckets of `bucket`, every bucket present (empty ones answer zeros); the
/// first and last buckets hold only the part inside the window.
pub async fn series(
    app: &App,
    telemetry: &Telemetry,
    bucket: TimeBucket,
) -> Result<Vec<(Timestamp, Summary)>, AppError> {
    let first = floor(telemetry.from, bucket);
    let step = width(bucket).num_minutes();
    let points = ((telemetry.to.0 - first.0).num_minutes() + step - 1) / step;
    if points > MAX_POINTS {
        return Err(AppError::bad_input(
            "bucket",
            format!(
                "this window has {points} buckets of {bucket}; at most {MAX_POINTS}: pick a wider bucket"
            ),
        ));
    }
    let rows = telemetry_db::rollups(
        &app.db,
        telemetry.model.id,
        telemetry.version_id,
        &cover(telemetry.from, telemetry.to, bucket),
    )
    .await?;
    let mut buckets: BTreeMap<Timestamp, Accumulator> = BTreeMap::new();
    let mut start = first;
    while start < telemetry.to {
        buckets.insert(start, Accumulator::default());
        start = Timestamp(start.0 + width(bucket));
    }
    for row in &rows {
        buckets
            .entry(floor(row.bucket_start, bucket))
            .or_default()
            .add(row)?;
    }
    Ok(buckets
        .into_iter()
        .map(|(start, acc)| (start, acc.finish()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp(chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap())
    }

    #[test]
    fn a_window_is_tiled_coarsest_first() {
        let ranges = cover(
            at("2026-01-01 22:58"),
            at("2026-01-04 01:03"),
            TimeBucket::Day,
        );
        let expected = vec![
            (
                TimeBucket::Minute,
                at("2026-01-01 22:58"),
                at("2026-01-01 23:00"),
            ),
            (
                TimeBucket::Hour,
                at("2026-01-01 23:00"),
                at("2026-01-02 00:00"),
            ),
            (
                TimeBucket::Day,
                at("2026-01-02 00:00"),
                at("2026-01-04 00:00"),
            ),
            (
                TimeBucket::Hour,
                at("2026-01-04 00:00"),
                at("2026-01-04 01:00"),
            ),
            (
                TimeBucket::Minute,
                at("2026-01-04 01:00"),
                at("2026-01-04 01:03"),
            ),
        ];
        assert_eq!(ranges, expected);
        assert_eq!(
            cover(
                at("2026-01-01 10:05"),
                at("2026-01-01 10:09"),
                TimeBucket::Day
            ),
            vec![(
                TimeBucket::Minute,
                at("2026-01-01 10:05"),
                at("2026-01-01 10:09")
            )]
        );
        assert_eq!(
            cover(
                at("2026-01-01 10:00"),
                at("2026-01-01 12:00"),
                TimeBucket::Minute
            ),
            vec![(
                TimeBucket::Minute,
                at("2026-01-01 10:00"),
                at("2026-01-01 12:00")
            )]
        );
    }

    #[test]
    fn hours_and_days_folded_from_minutes_hold_what_each_session_adds() {
        // Sessions across an hour's end and midnight, two versions, some without a TTFT.
        let (model, v1, v2) = (Id::new(), Id::new(), Id::new());
        let start = at("2026-01-01 23:40");
        let rows: Vec<InferenceSessionRow> = (0..400)
            .map(|i| InferenceSessionRow {
                project_id: Id::new(),
                id: Id::new(),
                model_id: model,
                model_version_id: if i % 3 == 0 { v2 } else { v1 },
                device_external_id: "d".into(),
                started_at: Timestamp(start.0 + chrono::Duration::seconds(17 * i)),
                latency_ms: 1.0 + (i * 37 % 500) as f64,
                ttft_ms: (i % 4 != 0).then_some(0.5 + (i % 90) as f64),
                input_tokens: Some(i),
                output_tokens: None,
                success: i % 7 != 0,
                error_code: None,
            })
            .collect();
        let mut folded = BTreeMap::new();
        let mut direct: BTreeMap<RollupKey, Delta> = BTreeMap::new();
        for row in &rows {
            add_to_minute(&mut folded, row);
            for bucket in [TimeBucket::Minute, TimeBucket::Hour, TimeBucket::Day] {
                let key = (
                    model,
                    bucket,
                    floor(row.started_at, bucket),
                    row.model_version_id,
                );
                direct.entry(key).or_default().add(row);
            }
        }
        fold_minutes(&mut folded).unwrap();
        assert_eq!(
            folded.keys().collect::<Vec<_>>(),
            direct.keys().collect::<Vec<_>>()
        );
        assert!(
            direct
                .keys()
                .any(|k| k.1 == TimeBucket::Day && k.2 == at("2026-01-02 00:00"))
        );
        for (key, want) in &direct {
            let got = folded[key].clone_row(*key);
            let want = want.clone_row(*key);
            assert_eq!(
                (
                    got.sessions,
                    got.successes,
                    got.ttft_count,
                    got.input_tokens,
                    got.output_tokens
                ),
                (
                    want.sessions,
                    want.successes,
                    want.ttft_count,
                    want.input_tokens,
                    want.output_tokens
                ),
                "{key:?}"
            );
            assert!((got.latency_sum - want.latency_sum).abs() < 1e-6);
            assert!((got.ttft_sum - want.ttft_sum).abs() < 1e-6);
            // Merging sketches is exact: the same buckets hold the same counts.
            assert_eq!(got.latency_sketch, want.latency_sketch, "{key:?}");
            assert_eq!(got.ttft_sketch, want.ttft_sketch, "{key:?}");
        }
    }
}
