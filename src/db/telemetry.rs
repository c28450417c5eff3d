//! Raw telemetry events and their summaries: inference sessions with per-minute, hour and
//! day rollups, and training updates with per-device and per-metric statistics.
//!
//! Inference summaries are merged under a per-model lock ([`lock_rollups`]): the stored rows
//! are read, the batch is merged into them, and each row is written once, whole. Training
//! summaries are merged under the row's lock: an upsert adds the counters and returns the
//! stored sketch (taking the row lock on PostgreSQL; SQLite has one writer), the caller merges
//! into it and writes the sketch back. Rows are written in key order, so concurrent batches
//! lock alike.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::page::{Cursor, Page, PageRequest};
use crate::db::schema::{
    inference_rollups, inference_sessions, training_device_stats, training_metric_stats,
    training_updates,
};
use crate::db::{Backend, BulkTx, Db, Fetch, Run, bulk, on_bulk_tx, on_tx, with_conn};
use crate::error::AppError;
use crate::values::{Id, TimeBucket, Timestamp};

#[derive(Debug, Clone)]
pub struct InferenceSessionRow {
    pub project_id: Id,
    pub id: Id,
    pub model_id: Id,
    pub model_version_id: Id,
    pub device_external_id: String,
    pub started_at: Timestamp,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub success: bool,
    pub error_code: Option<String>,
}

/// One request's sessions, checked, in the order sent, with the devices they name that this
/// replica does not know to be registered; written with others in a group (see
/// [`crate::db::group`]).
pub struct SessionBatch {
    pub rows: Vec<InferenceSessionRow>,
    pub devices: Vec<crate::db::devices::Device>,
}

/// A stored event's key, as `RETURNING` answers it.
#[derive(QueryableByName)]
struct EventKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    project_id: Id,
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: Id,
}

/// Sessions one compiled statement inserts on SQLite; a batch's last few go one by one.
const SQLITE_ROWS_PER_INSERT: usize = 64;

/// One session as SQLite stores it: every column named and absent values written as NULL,
/// so the statement is the same for every row and diesel keeps it compiled.
#[derive(Insertable)]
#[diesel(table_name = inference_sessions, treat_none_as_default_value = false)]
struct NewSession {
    project_id: Id,
    id: Id,
    model_id: Id,
    model_version_id: Id,
    device_external_id: String,
    started_at: Timestamp,
    latency_ms: f64,
    ttft_ms: Option<f64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    success: bool,
    error_code: Option<String>,
}

/// Owned: diesel keeps a statement of many rows compiled only when its values own their data.
impl From<&InferenceSessionRow> for NewSession {
    fn from(r: &InferenceSessionRow) -> Self {
        NewSession {
            project_id: r.project_id,
            id: r.id,
            model_id: r.model_id,
            model_version_id: r.model_version_id,
            device_external_id: r.device_external_id.clone(),
            started_at: r.started_at,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            success: r.success,
            error_code: r.error_code.clone(),
        }
    }
}

/// What [`insert_sessions`] does with a session whose `(project, id)` is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Leaves it out: it was a retry.
    Skip,
    /// Stores nothing and answers [`Inserted::Refused`]; on PostgreSQL the transaction is then
    /// aborted. A batch seldom holds a stored session, and on PostgreSQL a plain `INSERT` costs
    /// a quarter less per row than one that skips conflicts (`ON CONFLICT DO NOTHING` takes a
    /// speculative-insertion lock and writes a confirmation record per row; measured on
    /// 600,000 sessions in one statement: 8.3-9.3 s against 6.1-7.4 s), so the writer tries
    /// this first and runs its transaction again with [`Stored::Skip`] when refused.
    Refuse,
}

/// What [`insert_sessions`] stored.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Every row.
    All,
    /// The rows with these keys; the others were stored before.
    Only(Vec<(Id, Id)>),
    /// Nothing: a row was stored before, under [`Stored::Refuse`].
    Refused,
}

impl Inserted {
    /// The keys an insert of `rows` sessions answered.
    fn from_keys(keys: Vec<(Id, Id)>, rows: usize) -> Self {
        if keys.len() == rows {
            Inserted::All
        } else {
            Inserted::Only(keys)
        }
    }
}

/// Stores the sessions whose `(project, id)` is new (a session already stored is a retry), as
/// `stored` says. `rows` come in key order and without repeats, so concurrent transactions take
/// the key's locks in one order.
///
/// The statements differ per backend, for speed; what they store does not. SQLite runs in
/// the process, so statements cost no round trip but each is compiled, bound and stepped: 64
/// rows go to one statement that diesel keeps compiled (an `INSERT OR IGNORE`: the table has
/// no constraint but its key that a checked row could break), the last few of a batch one by
/// one, where a statement of the batch's size would be compiled anew every time. PostgreSQL
/// gets one statement per batch over an array per column (`unnest`), whose text does not grow
/// with the batch, where a `VALUES` list of 12,000 parameters is parsed and planned every time.
/// The arrays are unnested in the select list, which walks them in step, in order; `unnest`
/// in `FROM` first copies every row into a tuple store (measured: 4× the time of the scan).
/// SQLite skips stored sessions under either `stored`: ignoring a conflict costs it nothing.
pub async fn insert_sessions(
    tx: &mut BulkTx<'_>,
    rows: &[&InferenceSessionRow],
    stored: Stored,
) -> Result<Inserted, AppError> {
    match tx {
        BulkTx::Sqlite(conn) => {
            use inference_sessions as s;
            let mut keys = Vec::with_capacity(rows.len());
            let mut whole = rows.chunks_exact(SQLITE_ROWS_PER_INSERT);
            for chunk in whole.by_ref() {
                let values: [NewSession; SQLITE_ROWS_PER_INSERT] =
                    std::array::from_fn(|i| NewSession::from(chunk[i]));
                let stored: Vec<(Id, Id)> = diesel::insert_or_ignore_into(s::table)
                    .values(values)
                    .returning((s::project_id, s::id))
                    .fetch_all(&mut **conn)
                    .await?;
                keys.extend(stored);
            }
            for row in whole.remainder() {
                let inserted = diesel::insert_or_ignore_into(s::table)
                    .values(NewSession::from(*row))
                    .run(&mut **conn)
                    .await?;
                if inserted > 0 {
                    keys.push((row.project_id, row.id));
                }
            }
            Ok(Inserted::from_keys(keys, rows.len()))
        }
        BulkTx::Postgres(conn) => {
            use diesel::sql_types::{
                Array, BigInt, Bool, Double, Nullable, Text, Timestamp as Time,
            };
            const INSERT: &str = "INSERT INTO inference_sessions (project_id, id, model_id, \
                 model_version_id, device_external_id, started_at, latency_ms, ttft_ms, \
                 input_tokens, output_tokens, success, error_code) \
                 SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), \
                 unnest($4::text[]), unnest($5::text[]), unnest($6::timestamp[]), \
                 unnest($7::float8[]), unnest($8::float8[]), unnest($9::int8[]), \
                 unnest($10::int8[]), unnest($11::bool[]), unnest($12::text[])";
            let text = match stored {
                Stored::Refuse => INSERT.to_owned(),
                Stored::Skip => format!("{INSERT} ON CONFLICT DO NOTHING RETURNING project_id, id"),
            };
            let insert = diesel::sql_query(text)
                .bind::<Array<Text>, _>(column(rows, |r| r.project_id))
                .bind::<Array<Text>, _>(column(rows, |r| r.id))
                .bind::<Array<Text>, _>(column(rows, |r| r.model_id))
                .bind::<Array<Text>, _>(column(rows, |r| r.model_version_id))
                .bind::<Array<Text>, _>(column(rows, |r| r.device_external_id.as_str()))
                .bind::<Array<Time>, _>(column(rows, |r| r.started_at))
                .bind::<Array<Double>, _>(column(rows, |r| r.latency_ms))
                .bind::<Array<Nullable<Double>>, _>(column(rows, |r| r.ttft_ms))
                .bind::<Array<Nullable<BigInt>>, _>(column(rows, |r| r.input_tokens))
                .bind::<Array<Nullable<BigInt>>, _>(column(rows, |r| r.output_tokens))
                .bind::<Array<Bool>, _>(column(rows, |r| r.success))
                .bind::<Array<Nullable<Text>>, _>(column(rows, |r| r.error_code.as_deref()));
            if stored == Stored::Refuse {
                return match insert.run(&mut **conn).await {
                    Ok(_) => Ok(Inserted::All),
                    Err(e) if crate::error::is_unique_violation(&e) => Ok(Inserted::Refused),
                    Err(e) => Err(e.into()),
                };
            }
            let keys: Vec<EventKey> = insert.fetch_all(&mut **conn).await?;
            let keys = keys.into_iter().map(|k| (k.project_id, k.id)).collect();
            Ok(Inserted::from_keys(keys, rows.len()))
        }
    }
}

/// One field of every row, as the array PostgreSQL's `unnest` takes for a column.
fn column<'a, R, T>(rows: &'a [R], field: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// A summary row's key.
pub type RollupKey = (Id, TimeBucket, Timestamp, Id);

/// Proof that this transaction holds the summary rows it reads and writes (see
/// [`lock_rollups`]): [`stored_rollups`] and [`write_rollups`] take it, so no writer can skip
/// the lock.
pub struct RollupsHeld(());

/// Holds the summary rows of `models` for this transaction until it commits, across
/// transactions and replicas, so that reading a row, merging into it and writing it back is
/// one step. On PostgreSQL: a transaction-scoped advisory lock per model, keyed by 32 bits of
/// the model's id (the two-key form, class 7, kept apart from the one-key lock migrations
/// take), taken in key order in one statement, so two writers never wait for each other
/// crosswise. SQLite has one writer at a time and needs none.
pub async fn lock_rollups(tx: &mut BulkTx<'_>, models: &[Id]) -> Result<RollupsHeld, AppError> {
    if let BulkTx::Postgres(conn) = tx {
        use diesel::sql_types::{Array, Integer};
        // A UUIDv7's last bits are random; ids that share them share a lock, which is safe.
        let mut keys: Vec<i32> = models.iter().map(|m| m.0.as_u128() as u32 as i32).collect();
        keys.sort_unstable();
        keys.dedup();
        if !keys.is_empty() {
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock(7, k) FROM unnest($1::int4[]) WITH ORDINALITY \
                 AS l (k, n) ORDER BY n",
            )
            .bind::<Array<Integer>, _>(keys)
            .execute(&mut **conn)
            .await?;
        }
    }
    Ok(RollupsHeld(()))
}

/// The stored summary rows among `keys`, held by [`lock_rollups`].
///
/// As with sessions, PostgreSQL gets the keys as arrays and SQLite as a `VALUES` list: a list
/// of a thousand keys cost PostgreSQL more to parse, copy and plan than to look up.
pub async fn stored_rollups(
    tx: &mut BulkTx<'_>,
    _held: &RollupsHeld,
    keys: &[RollupKey],
) -> Result<Vec<Rollup>, AppError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    use diesel::sql_types::{Array, Text, Timestamp as Time};
    const SELECT: &str = "SELECT r.model_id, r.granularity, r.bucket_start, r.model_version_id, \
         r.sessions, r.successes, r.latency_sum, r.ttft_count, r.ttft_sum, r.input_tokens, \
         r.output_tokens, r.latency_sketch, r.ttft_sketch";
    const MATCH: &str = "r.model_id = v.model_id AND r.granularity = v.granularity \
         AND r.bucket_start = v.bucket_start AND r.model_version_id = v.model_version_id";
    match tx {
        BulkTx::Sqlite(conn) => {
            let mut stored = Vec::with_capacity(keys.len());
            for chunk in bulk::chunks(keys, 4) {
                let sql = format!(
                    "WITH v (model_id, granularity, bucket_start, model_version_id) AS \
                     (VALUES {}) {SELECT} FROM v JOIN inference_rollups r ON {MATCH}",
                    bulk::values(Backend::Sqlite, chunk.len(), 4)
                );
                let mut query = bulk::query(&**conn, sql);
                for (model, granularity, bucket, version) in chunk {
                    query = query
                        .bind::<Text, _>(*model)
                        .bind::<Text, _>(*granularity)
                        .bind::<Time, _>(*bucket)
                        .bind::<Text, _>(*version);
                }
                let rows: Vec<Rollup> = query.fetch_all(&mut **conn).await?;
                stored.extend(rows);
            }
            Ok(stored)
        }
        // Each key is one seek in the primary key. PostgreSQL would rather scan and hash the
        // whole table for a thousand keys, so the seek is spelled out as a lateral lookup
        // (`LIMIT 1` keeps the planner from turning it back into that join); SQLite plans
        // the join above as seeks by itself, and has no LATERAL.
        BulkTx::Postgres(conn) => Ok(diesel::sql_query(format!(
            "{SELECT} FROM unnest($1::text[], $2::text[], $3::timestamp[], $4::text[]) \
             AS v (model_id, granularity, bucket_start, model_version_id) \
             CROSS JOIN LATERAL (SELECT * FROM inference_rollups r WHERE {MATCH} LIMIT 1) r"
        ))
        .bind::<Array<Text>, _>(column(keys, |k| k.0))
        .bind::<Array<Text>, _>(column(keys, |k| k.1))
        .bind::<Array<Time>, _>(column(keys, |k| k.2))
        .bind::<Array<Text>, _>(column(keys, |k| k.3))
        .fetch_all(&mut **conn)
        .await?),
    }
}

/// Writes summary rows whole, creating missing ones: each row is written once per batch, with
/// its merged sketches. The rows must be held by [`lock_rollups`] and merged from what
/// [`stored_rollups`] answered under it. Rows go as arrays on PostgreSQL and as a `VALUES`
/// list on SQLite, as in [`stored_rollups`].
pub async fn write_rollups(
    tx: &mut BulkTx<'_>,
    _held: &RollupsHeld,
    rows: &[Rollup],
) -> Result<(), AppError> {
    if rows.is_empty() {
        return Ok(());
    }
    use diesel::sql_types::{Array, BigInt, Binary, Double, Nullable, Text, Timestamp as Time};
    const INSERT: &str = "INSERT INTO inference_rollups (model_id, granularity, bucket_start, \
         model_version_id, sessions, successes, latency_sum, ttft_count, ttft_sum, \
         input_tokens, output_tokens, latency_sketch, ttft_sketch)";
    const UPSERT: &str = "ON CONFLICT (model_id, granularity, bucket_start, model_version_id) \
         DO UPDATE SET sessions = excluded.sessions, successes = excluded.successes, \
         latency_sum = excluded.latency_sum, ttft_count = excluded.ttft_count, \
         ttft_sum = excluded.ttft_sum, input_tokens = excluded.input_tokens, \
         output_tokens = excluded.output_tokens, latency_sketch = excluded.latency_sketch, \
         ttft_sketch = excluded.ttft_sketch";
    match tx {
        BulkTx::Sqlite(conn) => {
            for chunk in bulk::chunks(rows, 13) {
                let sql = format!(
                    "{INSERT} VALUES {} {UPSERT}",
                    bulk::values(Backend::Sqlite, chunk.len(), 13)
                );
                let mut query = bulk::query(&**conn, sql);
                for r in chunk {
                    query = query
                        .bind::<Text, _>(r.model_id)
                        .bind::<Text, _>(r.granularity)
                        .bind::<Time, _>(r.bucket_start)
                        .bind::<Text, _>(r.model_version_id)
                        .bind::<BigInt, _>(r.sessions)
                        .bind::<BigInt, _>(r.successes)
                        .bind::<Double, _>(r.latency_sum)
                        .bind::<BigInt, _>(r.ttft_count)
                        .bind::<Double, _>(r.ttft_sum)
                        .bind::<BigInt, _>(r.input_tokens)
                        .bind::<BigInt, _>(r.output_tokens)
                        .bind::<Nullable<Binary>, _>(r.latency_sketch.as_deref())
                        .bind::<Nullable<Binary>, _>(r.ttft_sketch.as_deref());
                }
                query.run(&mut **conn).await?;
            }
        }
        BulkTx::Postgres(conn) => {
            diesel::sql_query(format!(
                "{INSERT} SELECT unnest($1::text[]), unnest($2::text[]), \
                 unnest($3::timestamp[]), unnest($4::text[]), unnest($5::int8[]), \
                 unnest($6::int8[]), unnest($7::float8[]), unnest($8::int8[]), \
                 unnest($9::float8[]), unnest($10::int8[]), unnest($11::int8[]), \
                 unnest($12::bytea[]), unnest($13::bytea[]) {UPSERT}"
            ))
            .bind::<Array<Text>, _>(column(rows, |r| r.model_id))
            .bind::<Array<Text>, _>(column(rows, |r| r.granularity))
            .bind::<Array<Time>, _>(column(rows, |r| r.bucket_start))
            .bind::<Array<Text>, _>(column(rows, |r| r.model_version_id))
            .bind::<Array<BigInt>, _>(column(rows, |r| r.sessions))
            .bind::<Array<BigInt>, _>(column(rows, |r| r.successes))
            .bind::<Array<Double>, _>(column(rows, |r| r.latency_sum))
            .bind::<Array<BigInt>, _>(column(rows, |r| r.ttft_count))
            .bind::<Array<Double>, _>(column(rows, |r| r.ttft_sum))
            .bind::<Array<BigInt>, _>(column(rows, |r| r.input_tokens))
            .bind::<Array<BigInt>, _>(column(rows, |r| r.output_tokens))
            .bind::<Array<Nullable<Binary>>, _>(column(rows, |r| r.latency_sketch.as_deref()))
            .bind::<Array<Nullable<Binary>>, _>(column(rows, |r| r.ttft_sketch.as_deref()))
            .run(&mut **conn)
            .await?;
        }
    }
    Ok(())
}

/// A stored summary row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = inference_rollups)]
pub struct Rollup {
    pub model_id: Id,
    pub granularity: TimeBucket,
    pub bucket_start: Timestamp,
    pub model_version_id: Id,
    pub sessions: i64,
    pub successes: i64,
    pub latency_sum: f64,
    pub ttft_count: i64,
    pub ttft_sum: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub latency_sketch: Option<Vec<u8>>,
    pub ttft_sketch: Option<Vec<u8>>,
}

impl Rollup {
    pub fn key(&self) -> RollupKey {
        (
            self.model_id,
            self.granularity,
            self.bucket_start,
            self.model_version_id,
        )
    }
}

/// The model's summary rows of one granularity whose buckets start in `[from, to)`.
pub async fn rollups(
    db: &Db,
    model_id: Id,
    version_id: Option<Id>,
    ranges: &[(TimeBucket, Timestamp, Timestamp)],
) -> Result<Vec<Rollup>, AppError> {
    use inference_rollups as r;
    let mut rows = Vec::new();
    with_conn!(db, conn => {
        for (granularity, from, to) in ranges {
            let mut query = r::table
                .filter(r::model_id.eq(model_id))
                .filter(r::granularity.eq(*granularity))
                .filter(r::bucket_start.ge(*from))
                .filter(r::bucket_start.lt(*to))
                .select(Rollup::as_select())
                .into_boxed();
            if let Some(version) = version_id {
                query = query.filter(r::model_version_id.eq(version));
            }
            rows.extend(query.load(conn).await?);
        }
        Ok(rows)
    })
}

/// The model's raw sessions started in `[from, to)`: (version, latency, time to first token).
pub async fn session_measures(
    db: &Db,
    model_id: Id,
    version_id: Option<Id>,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(Id, f64, Option<f64>)>, AppError> {
    use inference_sessions as s;
    with_conn!(db, conn => {
        let mut query = s::table
            .filter(s::model_id.eq(model_id))
            .filter(s::started_at.ge(from))
            .filter(s::started_at.lt(to))
            .select((s::model_version_id, s::latency_ms, s::ttft_ms))
            .into_boxed();
        if let Some(version) = version_id {
            query = query.filter(s::model_version_id.eq(version));
        }
        Ok(query.load(conn).await?)
    })
}

/// Removes raw events older than `cutoff`, a slice of `step` at a time so no statement holds
/// more than a slice's rows; answers how many went. Any number of replicas may run it: a row
/// is deleted once.
///
/// Inference sessions are walked model by model along their `(model_id, started_at)` index
/// (the next model is an index seek past the last), so no index on `started_at` alone is kept
/// for the sweep's sake: it would cost every stored session a third index entry.
pub async fn delete_raw_before(
    db: &Db,
    cutoff: Timestamp,
    step: chrono::Duration,
) -> Result<usize, AppError> {
    // The same sweep for each raw table and its time column, within `$scope` (a filter).
    macro_rules! sweep {
        ($table:ident, $time:ident, $scope:expr) => {{
            let mut removed = 0;
            loop {
                let oldest: Option<Timestamp> = with_conn!(db, conn => {
                    $table::table
                        .filter($scope)
                        .select(diesel::dsl::min($table::$time))
                        .first::<Option<Timestamp>>(conn)
                        .await?
                });
                let Some(oldest) = oldest.filter(|t| t.0 < cutoff.0) else {
                    break;
                };
                let until = Timestamp((oldest.0 + step).min(cutoff.0));
                removed += db
                    .transaction(async |tx| {
                        on_tx!(tx, conn => {
                            Ok(diesel::delete(
                                $table::table.filter($scope).filter($table::$time.lt(until)),
                            )
                            .execute(conn)
                            .await?)
                        })
                    })
                    .await?;
            }
            removed
        }};
    }
    use inference_sessions as s;
    let mut removed = 0;
    // One seek per model: the next model's first row in (model, started_at) order is that
    // model's oldest session; a model with nothing expired costs only that.
    let mut last: Option<Id> = None;
    loop {
        let next: Option<(Id, Timestamp)> = with_conn!(db, conn => {
            let mut query = s::table
                .select((s::model_id, s::started_at))
                .order((s::model_id, s::started_at))
                .into_boxed();
            if let Some(last) = last {
                query = query.filter(s::model_id.gt(last));
            }
            query.first::<(Id, Timestamp)>(conn).await.optional()?
        });
        let Some((model, oldest)) = next else { break };
        if oldest.0 < cutoff.0 {
            removed += sweep!(inference_sessions, started_at, s::model_id.eq(model));
        }
        last = Some(model);
    }
    // Training updates take few rows and keep their index on `recorded_at`: one walk.
    let everything = diesel::dsl::sql::<diesel::sql_types::Bool>("TRUE");
    removed += sweep!(training_updates, recorded_at, everything.clone());
    Ok(removed)
}

#[derive(Debug, Clone)]
pub struct TrainingUpdateRow {
    pub project_id: Id,
    pub id: Id,
    pub model_id: Id,
    pub model_version_id: Id,
    pub device_external_id: String,
    pub sample_count: i64,
    /// A JSON object of metric name → number.
    pub metrics: String,
    pub recorded_at: Timestamp,
}

/// Stores the updates whose `(project, id)` is new; answers the keys it stored.
pub async fn insert_training_updates(
    tx: &mut BulkTx<'_>,
    rows: &[TrainingUpdateRow],
) -> Result<Vec<(Id, Id)>, AppError> {
    use diesel::sql_types::{BigInt, Text, Timestamp as Time};
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in bulk::chunks(rows, 8) {
        let sql = format!(
            "INSERT INTO training_updates (project_id, id, model_id, model_version_id, \
             device_external_id, sample_count, metrics, recorded_at) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING project_id, id",
            bulk::values(tx.backend(), chunk.len(), 8)
        );
        on_bulk_tx!(tx, conn => {
            let mut query = bulk::query(conn, sql.clone());
            for r in chunk {
                query = query
                    .bind::<Text, _>(r.project_id)
                    .bind::<Text, _>(r.id)
                    .bind::<Text, _>(r.model_id)
                    .bind::<Text, _>(r.model_version_id)
                    .bind::<Text, _>(&r.device_external_id)
                    .bind::<BigInt, _>(r.sample_count)
                    .bind::<Text, _>(&r.metrics)
                    .bind::<Time, _>(r.recorded_at);
            }
            let keys: Vec<EventKey> = query.fetch_all(conn).await?;
            stored.extend(keys.into_iter().map(|k| (k.project_id, k.id)));
        });
    }
    Ok(stored)
}

/// One device's training statistics for one version.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = training_device_stats)]
pub struct DeviceTraining {
    pub model_version_id: Id,
    pub device_external_id: String,
    pub model_id: Id,
    pub updates: i64,
    pub samples: i64,
    pub latest_metrics: String,
    pub latest_recorded_at: Timestamp,
}

#[derive(QueryableByName)]
#[diesel(table_name = training_device_stats)]
struct StoredLatest {
    model_version_id: Id,
    device_external_id: String,
    latest_recorded_at: Timestamp,
}

/// Adds `rows` (sorted by key) to the per-device statistics; answers each row's stored latest
/// time, so the caller replaces the latest metrics where the batch holds newer ones.
pub async fn add_device_training(
    tx: &mut BulkTx<'_>,
    rows: &[DeviceTraining],
) -> Result<Vec<(Id, String, Timestamp)>, AppError> {
    use diesel::sql_types::{BigInt, Text, Timestamp as Time};
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in bulk::chunks(rows, 7) {
        let sql = format!(
            "INSERT INTO training_device_stats (model_version_id, device_external_id, model_id, \
             updates, samples, latest_metrics, latest_recorded_at) VALUES {} \
             ON CONFLICT (model_version_id, device_external_id) DO UPDATE SET \
             updates = training_device_stats.updates + excluded.updates, \
             samples = training_device_stats.samples + excluded.samples \
             RETURNING model_version_id, device_external_id, latest_recorded_at",
            bulk::values(tx.backend(), chunk.len(), 7)
        );
        on_bulk_tx!(tx, conn => {
            let mut query = bulk::query(conn, sql.clone());
            for r in chunk {
                query = query
                    .bind::<Text, _>(r.model_version_id)
                    .bind::<Text, _>(&r.device_external_id)
                    .bind::<Text, _>(r.model_id)
                    .bind::<BigInt, _>(r.updates)
                    .bind::<BigInt, _>(r.samples)
                    .bind::<Text, _>(&r.latest_metrics)
                    .bind::<Time, _>(r.latest_recorded_at);
            }
            let returned: Vec<StoredLatest> = query.fetch_all(conn).await?;
            stored.extend(
                returned
                    .into_iter()
                    .map(|r| (r.model_version_id, r.device_external_id, r.latest_recorded_at)),
            );
        });
    }
    Ok(stored)
}

/// Replaces the latest metrics of `(version, device)` rows, all in one statement.
pub async fn set_device_latest(
    tx: &mut BulkTx<'_>,
    rows: &[(Id, String, String, Timestamp)],
) -> Result<(), AppError> {
    use diesel::sql_types::{Text, Timestamp as Time};
    for chunk in bulk::chunks(rows, 4) {
        let sql = format!(
            "WITH v (model_version_id, device_external_id, latest_metrics, latest_recorded_at) \
             AS (VALUES {}) \
             UPDATE training_device_stats SET latest_metrics = v.latest_metrics, \
             latest_recorded_at = v.latest_recorded_at FROM v \
             WHERE training_device_stats.model_version_id = v.model_version_id \
             AND training_device_stats.device_external_id = v.device_external_id",
            bulk::values(tx.backend(), chunk.len(), 4)
        );
        on_bulk_tx!(tx, conn => {
            let mut query = bulk::query(conn, sql.clone());
            for (version, device, metrics, at) in chunk {
                query = query
                    .bind::<Text, _>(*version)
                    .bind::<Text, _>(device)
                    .bind::<Text, _>(metrics)
                    .bind::<Time, _>(*at);
            }
            query.run(conn).await?;
        });
    }
    Ok(())
}

#[derive(QueryableByName)]
#[diesel(table_name = training_metric_stats)]
struct StoredMetric {
    model_version_id: Id,
    metric: String,
    sketch: Option<Vec<u8>>,
}

/// Makes sure each `(version, metric)` has a row (sorted by key) and answers the stored
/// sketches, locked until the commit; `None` for a row this call created.
pub async fn lock_metric_sketches(
    tx: &mut BulkTx<'_>,
    keys: &[(Id, String)],
) -> Result<Vec<(Id, String, Option<Vec<u8>>)>, AppError> {
    use diesel::sql_types::Text;
    let mut stored = Vec::with_capacity(keys.len());
    for chunk in bulk::chunks(keys, 2) {
        let sql = format!(
            "INSERT INTO training_metric_stats (model_version_id, metric) VALUES {} \
             ON CONFLICT (model_version_id, metric) DO UPDATE SET metric = excluded.metric \
             RETURNING model_version_id, metric, sketch",
            bulk::values(tx.backend(), chunk.len(), 2)
        );
        on_bulk_tx!(tx, conn => {
            let mut query = bulk::query(conn, sql.clone());
            for (version, metric) in chunk {
                query = query.bind::<Text, _>(*version).bind::<Text, _>(metric);
            }
            let returned: Vec<StoredMetric> = query.fetch_all(conn).await?;
            stored.extend(returned.into_iter().map(|r| (r.model_version_id, r.metric, r.sketch)));
        });
    }
    Ok(stored)
}

/// Writes merged metric sketches back, all in one statement.
pub async fn set_metric_sketches(
    tx: &mut BulkTx<'_>,
    rows: &[(Id, String, Vec<u8>)],
) -> Result<(), AppError> {
    use diesel::sql_types::{Binary, Text};
    for chunk in bulk::chunks(rows, 3) {
        let sql = format!(
            "WITH v (model_version_id, metric, sketch) AS (VALUES {}) \
             UPDATE training_metric_stats SET sketch = v.sketch FROM v \
             WHERE training_metric_stats.model_version_id = v.model_version_id \
             AND training_metric_stats.metric = v.metric",
            bulk::values(tx.backend(), chunk.len(), 3)
        );
        on_bulk_tx!(tx, conn => {
            let mut query = bulk::query(conn, sql.clone());
            for (version, metric, sketch) in chunk {
                query = query
                    .bind::<Text, _>(*version)
                    .bind::<Text, _>(metric)
                    .bind::<Binary, _>(sketch);
            }
            query.run(conn).await?;
        });
    }
    Ok(())
}

/// Per version of the model (or the one version): updates, samples and devices.
pub async fn training_totals(
    db: &Db,
    model_id: Option<Id>,
    version_id: Option<Id>,
) -> Result<Vec<(Id, i64, i64, i64)>, AppError> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;
    use training_device_stats as d;
    with_conn!(db, conn => {
        let mut query = d::table
            .group_by(d::model_version_id)
            .select((
                d::model_version_id,
                sql::<BigInt>("CAST(SUM(updates) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(samples) AS BIGINT)"),
                sql::<BigInt>("COUNT(*)"),
            ))
            .into_boxed();
        if let Some(model) = model_id {
            query = query.filter(d::model_id.eq(model));
        }
        if let Some(version) = version_id {
            query = query.filter(d::model_version_id.eq(version));
        }
        Ok(query.load(conn).await?)
    })
}

/// The newest update's metrics and time for a version, across its devices.
pub async fn latest_training(
    db: &Db,
    version_id: Id,
) -> Result<Option<(String, Timestamp)>, AppError> {
    use training_device_stats as d;
    with_conn!(db, conn => {
        Ok(d::table
            .filter(d::model_version_id.eq(version_id))
            .order((d::latest_recorded_at.desc(), d::device_external_id.desc()))
            .select((d::latest_metrics, d::latest_recorded_at))
            .first(conn)
            .await
            .optional()?)
    })
}

/// The version's metric sketches, by metric name.
pub async fn metric_sketches(
    db: &Db,
    version_id: Id,
) -> Result<Vec<(String, Option<Vec<u8>>)>, AppError> {
    use training_metric_stats as m;
    with_conn!(db, conn => {
        Ok(m::table
            .filter(m::model_version_id.eq(version_id))
            .order(m::metric.asc())
            .select((m::metric, m::sketch))
            .load(conn)
            .await?)
    })
}

/// A device list has no row id of its own: the cursor's id is unused (nil) and its key is the
/// device's identifier, unique within a version.
pub fn device_training_cursor(row: &DeviceTraining) -> Cursor {
    Cursor {
        key: row.device_external_id.clone(),
        id: Id(uuid::Uuid::nil()),
    }
}

/// The version's per-device statistics, by device identifier.
pub async fn device_training_page(
    db: &Db,
    version_id: Id,
    page: &PageRequest,
    count_total: bool,
) -> Result<Page<DeviceTraining>, AppError> {
    use training_device_stats as d;
    let ascending = page.ascending(true);
    with_conn!(db, conn => {
        let total = if count_total {
            Some(
                d::table
                    .filter(d::model_version_id.eq(version_id))
                    .count()
                    .get_result::<i64>(conn)
                    .await?,
            )
        } else {
            None
        };
        let mut query = d::table
            .filter(d::model_version_id.eq(version_id))
            .select(DeviceTraining::as_select())
            .into_boxed();
        if let Some(c) = &page.cursor {
            query = if ascending {
                query.filter(d::device_external_id.gt(c.key.clone()))
            } else {
                query.filter(d::device_external_id.lt(c.key.clone()))
            };
        }
        query = if ascending {
            query.order(d::device_external_id.asc())
        } else {
            query.order(d::device_external_id.desc())
        };
        let rows = query.limit(page.limit + 1).load(conn).await?;
        Ok(page.finish(rows, total))
    })
}
