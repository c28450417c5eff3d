//! Database access for both backends from one query codebase.
//!
//! `#[derive(MultiConnection)]` does not work with diesel-async connections, so [`Pool`] is an
//! enum of two deadpool pools and the macros [`with_conn!`] (reads), [`read!`] (reads on a hot
//! path, see [`Fetch`]), [`on_tx!`] (statements in a [`Tx`], which every write takes) and
//! [`on_bulk_tx!`] (statements in a [`BulkTx`], for hot write paths) and [`on_any_tx!`]
//! (statements either kind of transaction runs, through [`AnyTx`]) expand a query body once per
//! concrete connection type: each query is written once and type-checked against both.

pub mod api_keys;
pub mod artifacts;
pub mod blobs;
pub mod bulk;
pub mod catalog;
pub mod changes;
pub mod devices;
pub mod endpoints;
pub mod group;
pub mod model_versions;
pub mod models;
pub mod organizations;
pub mod page;
pub mod projects;
pub mod schema;
pub mod telemetry;
pub mod uploads;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;

use crate::error::AppError;

pub type SqliteAsync = SyncConnectionWrapper<SqliteConnection>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Same key on every replica: migrations run under it so two replicas starting at once do not
/// apply the same migration twice.
const MIGRATION_LOCK_KEY: i64 = 0x6d72_6d69_6772;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub enum Pool {
    Sqlite(DeadPool<SqliteAsync>),
    Postgres(DeadPool<AsyncPgConnection>),
}

/// The database handle shared by every request.
#[derive(Clone)]
pub struct Db {
    pool: Arc<Pool>,
    queries: Arc<AtomicU64>,
    /// SQLite allows one writer; a deferred transaction that reads and then writes fails with
    /// `SQLITE_BUSY` instead of waiting when another connection wrote in between. Serialising
    /// write transactions inside the process avoids that (the embedded shape is one process).
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
}

// Pooled connections are not pinged on checkout (`RecyclingMethod::Fast`): the default
// verification costs one extra round trip per request, and a broken connection still fails
// its query, is reported, and is discarded by the pool.

/// Counts statements per `Db`, so tests can show a query's cost does not grow with page size.
struct QueryCounter(Arc<AtomicU64>);

impl Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            tracing::trace!(target: "model_registry::sql", "{}", statement_text(&query.to_string()));
            self.0.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("mr_db_queries_total").increment(1);
        }
    }
}

/// The SQL of a statement without its bound values (cut at the first separator: a value could
/// contain the same text). Values include key hashes and the
/// URL-signing secret, and no log level may show them.
fn statement_text(debug: &str) -> &str {
    debug
        .split_once(" -- binds: ")
        .map_or(debug, |(sql, _)| sql)
}

/// Where the SQLite file is, from `sqlite://path` or `sqlite:path`.
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

pub fn backend_of(url: &str) -> Result<Backend, AppError> {
    if sqlite_path(url).is_some() {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(AppError::bad_input(
            "DATABASE_URL",
            "expected sqlite://PATH or postgres://USER@HOST/DB",
        ))
    }
}

fn establish_sqlite(path: &str) -> Result<SqliteConnection, ConnectionError> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
    )
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

impl Db {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Db, anyhow::Error> {
        migrate(url).await?;
        let queries = Arc::new(AtomicU64::new(0));
        let pool = match backend_of(url)? {
            Backend::Sqlite => {
                let counter = queries.clone();
                let mut config = ManagerConfig::<SqliteAsync>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url| {
                    let path = sqlite_path(url).unwrap_or(url).to_owned();
                    let counter = counter.clone();
                    async move {
                        let conn = tokio::task::spawn_blocking(move || {
                            let mut conn = establish_sqlite(&path)?;
                            conn.set_instrumentation(QueryCounter(counter));
                            Ok::<_, ConnectionError>(conn)
                        })
                        .await
                        .map_err(|e| ConnectionError::BadConnection(e.to_string()))??;
                        Ok(SyncConnectionWrapper::new(conn))
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                Pool::Sqlite(build_pool(manager, pool_size)?)
            }
            Backend::Postgres => {
                let counter = queries.clone();
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url| {
                    let url = url.to_owned();
                    let counter = counter.clone();
                    async move {
                        let mut conn = AsyncPgConnection::establish(&url).await?;
                        conn.set_instrumentation(QueryCounter(counter));
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                Pool::Postgres(build_pool(manager, pool_size)?)
            }
        };
        Ok(Db {
            pool: Arc::new(pool),
            queries,
            sqlite_writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        match *self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Statements run through this handle since it was opened.
    pub fn query_count(&self) -> u64 {
        AtomicU64::load(&self.queries, Ordering::Relaxed)
    }

    /// Held for the length of a write transaction on SQLite; free on PostgreSQL.
    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend() {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// (size, available) connections, for `/metrics`.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = match &*self.pool {
            Pool::Sqlite(p) => p.status(),
            Pool::Postgres(p) => p.status(),
        };
        (status.size, status.available)
    }

    /// Answers whether the database takes a query now: `/readyz`.
    pub async fn ping(&self) -> Result<(), AppError> {
        with_conn!(self, conn => {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .get_result::<i32>(conn)
                .await?;
            Ok(())
        })
    }
}

fn build_pool<C>(
    manager: AsyncDieselConnectionManager<C>,
    size: usize,
) -> Result<DeadPool<C>, anyhow::Error>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    DeadPool<C>: Sized,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    DeadPool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| anyhow::Error::msg(format!("database pool: {e}")))
}

/// Applies pending migrations for the backend the URL names; creates the SQLite file's folder.
pub async fn migrate(url: &str) -> Result<(), anyhow::Error> {
    match backend_of(url)? {
        Backend::Sqlite => {
            let path = sqlite_path(url).unwrap_or(url).to_owned();
            tokio::task::spawn_blocking(move || -> Result<(), anyhow::Error> {
                if let Some(dir) = std::path::Path::new(&path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        anyhow::Error::msg(format!("creating {}: {e}", dir.display()))
                    })?;
                }
                let mut conn = establish_sqlite(&path)
                    .map_err(|e| anyhow::Error::msg(format!("opening {path}: {e}")))?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| anyhow::Error::msg(format!("migrating: {e}")))?;
                Ok(())
            })
            .await
            .map_err(|e| anyhow::Error::msg(e.to_string()))?
        }
        Backend::Postgres => {
            let connect_err =
                |e: ConnectionError| anyhow::Error::msg(format!("connecting to PostgreSQL: {e}"));
            let mut lock_conn = AsyncPgConnection::establish(url)
                .await
                .map_err(connect_err)?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(&mut lock_conn)
                .await
                .map_err(|e| anyhow::Error::msg(format!("migration lock: {e}")))?;
            let conn = AsyncPgConnection::establish(url)
                .await
                .map_err(connect_err)?;
            let url = url.to_owned();
            // The harness drives an async connection from a sync trait: run it off the reactor.
            let result = tokio::task::spawn_blocking(move || {
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                harness
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|_| ())
                    .map_err(|e| format!("migrating {}: {e}", redact_url(&url)))
            })
            .await
            .map_err(|e| anyhow::Error::msg(e.to_string()))?;
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(&mut lock_conn)
                .await
                .ok();
            result.map_err(anyhow::Error::msg)
        }
    }
}

/// A database URL fit for a log line: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// An open transaction, on whichever backend the database is. Every write takes one, so a
/// domain operation can make changes in several areas (`artifacts::retire`, `uploads::close`,
/// `models::set_status`) and have them committed together or not at all; see
/// [`Db::transaction`]. Functions in `db/` run their statements on it through [`on_tx!`], or
/// through [`on_any_tx!`] when a [`BulkTx`] runs them too.
pub enum Tx<'c> {
    Sqlite(&'c mut SqliteAsync),
    Postgres(&'c mut AsyncPgConnection),
}

impl Db {
    /// Runs `work` in one transaction: committed when it returns `Ok`, rolled back on `Err`.
    /// On SQLite the process-wide writer lock is held throughout (see [`Db`]).
    pub async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&mut Tx<'_>) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let _writer = self.write_guard().await;
        match self.pool() {
            Pool::Sqlite(pool) => {
                let mut pooled = pool.get().await?;
                let conn: &mut SqliteAsync = &mut pooled;
                run_in_transaction(conn, async |conn| work(&mut Tx::Sqlite(conn)).await).await
            }
            Pool::Postgres(pool) => {
                let mut pooled = pool.get().await?;
                let conn: &mut AsyncPgConnection = &mut pooled;
                run_in_transaction(conn, async |conn| work(&mut Tx::Postgres(conn)).await).await
            }
        }
    }
}

/// A transaction on a hot write path (telemetry ingest, creating models and versions), whose
/// statements are written through [`Fetch`] and [`Run`] in [`on_bulk_tx!`] or [`on_any_tx!`],
/// or, for two statements sent together on PostgreSQL, matched per backend and [`pipelined`];
/// see [`Db::bulk_transaction`].
pub enum BulkTx<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut AsyncPgConnection),
}

/// Awaits two statements made on one `&AsyncPgConnection` (`query.execute(&mut &*conn)`)
/// together: the second is sent before the first's answer is back, so the pair costs one round
/// trip, and on a hot write path round trips are most of a transaction's cost.
///
/// The server runs them in the order they were sent, and that is the order given here:
/// `join` polls `first` before `second`, and diesel-async (0.9.2, pinned for this) sends a
/// statement in its first poll once the statement is prepared, or else right after preparing
/// it, under the connection's statement-cache lock that `second` queues behind. So `second`
/// may rely on what `first` did (a row it inserted, a lock it took), though not on its
/// answer. That holds for statements over built-in SQL types only: one binding a custom type
/// looks its type up before taking that lock, and may be overtaken. Inside a transaction, as
/// here, PostgreSQL refuses `second` once `first` failed: look at `first`'s result first.
pub(crate) async fn pipelined<A, B>(
    first: impl std::future::Future<Output = A>,
    second: impl std::future::Future<Output = B>,
) -> (A, B) {
    futures::future::join(first, second).await
}

impl Db {
    /// Runs `work` in one transaction, as [`Db::transaction`] does, but on SQLite all of it
    /// (BEGIN, every statement, the work between them, COMMIT) runs in one blocking call on the
    /// plain connection. The writer lock is held for exactly that long: with one blocking call
    /// per statement, each of the transaction's steps also waited for a blocking thread to be
    /// scheduled and then for an async worker to pick the result up, and on a busy machine
    /// those waits were a third of the time every other writer queued behind it.
    ///
    /// `work` owns what it uses and awaits nothing but its statements (anything else panics,
    /// as in [`read!`]); a panic discards the connection and goes on unwinding in the caller.
    pub async fn bulk_transaction<T, W>(&self, work: W) -> Result<T, AppError>
    where
        W: AsyncFnOnce(&mut BulkTx<'_>) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let _writer = self.write_guard().await;
        match self.pool() {
            Pool::Sqlite(pool) => {
                on_sqlite_thread(pool, move |conn| {
                    diesel::Connection::transaction(conn, |conn| {
                        futures::FutureExt::now_or_never(work(&mut BulkTx::Sqlite(conn)))
                            .expect("a bulk transaction awaits only its statements")
                    })
                })
                .await?
            }
            Pool::Postgres(pool) => {
                let mut pooled = pool.get().await?;
                let conn: &mut AsyncPgConnection = &mut pooled;
                run_in_transaction(conn, async |conn| work(&mut BulkTx::Postgres(conn)).await).await
            }
        }
    }
}

/// Runs `work` on a pooled SQLite connection in one blocking call: the SQLite side of [`read!`]
/// and [`Db::bulk_transaction`]. A panic in `work` is caught inside the connection's lock, so
/// the lock is not poisoned for the next request that gets the connection; the connection is
/// then discarded and the panic goes on unwinding in the caller, as it would on PostgreSQL.
pub(crate) async fn on_sqlite_thread<R: Send + 'static>(
    pool: &DeadPool<SqliteAsync>,
    work: impl FnOnce(&mut SqliteConnection) -> R + Send + 'static,
) -> Result<R, AppError> {
    let mut pooled = pool.get().await?;
    let wrapper: &mut SqliteAsync = &mut pooled;
    let outcome = wrapper
        .spawn_blocking(move |conn: &mut SqliteConnection| {
            Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || work(conn),
            )))
        })
        .await?;
    match outcome {
        Ok(result) => Ok(result),
        Err(panic) => {
            drop(deadpool::managed::Object::take(pooled));
            std::panic::resume_unwind(panic)
        }
    }
}

/// BEGIN, the work, then COMMIT or ROLLBACK: diesel-async's own `transaction` wants a `Send`
/// bound on a higher-ranked future that a generic caller cannot name.
async fn run_in_transaction<C, T>(
    conn: &mut C,
    work: impl AsyncFnOnce(&mut C) -> Result<T, AppError>,
) -> Result<T, AppError>
where
    C: AsyncConnection,
{
    use diesel_async::TransactionManager;
    C::TransactionManager::begin_transaction(conn).await?;
    match work(conn).await {
        Ok(value) => {
            C::TransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = C::TransactionManager::rollback_transaction(conn).await {
                tracing::warn!(error = %rollback, "rolling back a transaction failed");
            }
            Err(err)
        }
    }
}

/// The connection of a transaction of either kind: [`Tx`], or [`BulkTx`] whose SQLite side is
/// the plain connection.
pub enum TxConn<'a> {
    SqliteAsync(&'a mut SqliteAsync),
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut AsyncPgConnection),
}

/// A transaction of either kind. A statement that both kinds run is written once, with
/// [`Fetch`] and [`Run`] inside [`on_any_tx!`], for `tx: &mut impl AnyTx`.
pub trait AnyTx {
    fn conn(&mut self) -> TxConn<'_>;
}

impl AnyTx for Tx<'_> {
    fn conn(&mut self) -> TxConn<'_> {
        match self {
            Tx::Sqlite(conn) => TxConn::SqliteAsync(conn),
            Tx::Postgres(conn) => TxConn::Postgres(conn),
        }
    }
}

impl AnyTx for BulkTx<'_> {
    fn conn(&mut self) -> TxConn<'_> {
        match self {
            BulkTx::Sqlite(conn) => TxConn::Sqlite(conn),
            BulkTx::Postgres(conn) => TxConn::Postgres(conn),
        }
    }
}

/// Runs `$body` with `$conn` bound to the connection of `$tx` (an [`AnyTx`]), once per kind of
/// connection; the body's statements go through [`Fetch`] and [`Run`].
macro_rules! on_any_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $crate::db::AnyTx::conn($tx) {
            $crate::db::TxConn::SqliteAsync($conn) => $body,
            $crate::db::TxConn::Sqlite($conn) => $body,
            $crate::db::TxConn::Postgres($conn) => $body,
        }
    };
}
pub(crate) use on_any_tx;

/// Runs `$body` with `$conn` bound to the connection of the transaction `$tx`, once per backend.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx_conn) => {
                let $conn: &mut $crate::db::SqliteAsync = &mut **tx_conn;
                $body
            }
            $crate::db::Tx::Postgres(tx_conn) => {
                let $conn: &mut diesel_async::AsyncPgConnection = &mut **tx_conn;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Runs `$body` with `$conn` bound to the connection of the [`BulkTx`] `$tx`, once per
/// backend; the body's statements go through [`Fetch`] and [`Run`].
macro_rules! on_bulk_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::BulkTx::Sqlite(tx_conn) => {
                let $conn: &mut diesel::sqlite::SqliteConnection = &mut **tx_conn;
                $body
            }
            $crate::db::BulkTx::Postgres(tx_conn) => {
                let $conn: &mut diesel_async::AsyncPgConnection = &mut **tx_conn;
                $body
            }
        }
    };
}
pub(crate) use on_bulk_tx;

/// A statement that answers rows, written once for both backends and run inside [`read!`],
/// [`on_bulk_tx!`] or [`on_any_tx!`]: `query.fetch_all(conn).await`.
///
/// On SQLite [`read!`] and [`Db::bulk_transaction`] run their body on one blocking thread with
/// the plain connection, so these futures are ready at once, and rows are decoded straight off
/// the statement (in a [`Tx`], `on_any_tx!` runs them through diesel-async's wrapper as
/// `on_tx!` does).
/// diesel-async's wrapper instead crosses to a blocking thread per statement and copies every
/// value of every row (`sqlite3_value_dup`) before decoding it: on the model list that copy
/// was a sixth of the server's time.
pub(crate) trait Fetch<'q, 'c, C, U> {
    type All: std::future::Future<Output = diesel::QueryResult<Vec<U>>>;
    type One: std::future::Future<Output = diesel::QueryResult<U>>;
    /// Every row.
    fn fetch_all(self, conn: &'c mut C) -> Self::All;
    /// The first row; `NotFound` when there is none (`.optional()` turns that into `None`).
    fn fetch_one(self, conn: &'c mut C) -> Self::One;
}

impl<'q, 'c, Q, U> Fetch<'q, 'c, SqliteConnection, U> for Q
where
    Q: diesel::query_dsl::LoadQuery<'q, SqliteConnection, U>,
{
    type All = std::future::Ready<diesel::QueryResult<Vec<U>>>;
    type One = std::future::Ready<diesel::QueryResult<U>>;

    fn fetch_all(self, conn: &'c mut SqliteConnection) -> Self::All {
        std::future::ready(diesel::RunQueryDsl::load(self, conn))
    }

    fn fetch_one(self, conn: &'c mut SqliteConnection) -> Self::One {
        std::future::ready(diesel::RunQueryDsl::get_result(self, conn))
    }
}

impl<'q, 'c, Q, U> Fetch<'q, 'c, AsyncPgConnection, U> for Q
where
    Q: diesel_async::methods::LoadQuery<'q, AsyncPgConnection, U> + 'q,
    U: Send + 'c,
{
    type All = diesel_async::return_futures::LoadFuture<'c, 'q, Q, AsyncPgConnection, U>;
    type One = diesel_async::return_futures::GetResult<'c, 'q, Q, AsyncPgConnection, U>;

    fn fetch_all(self, conn: &'c mut AsyncPgConnection) -> Self::All {
        RunQueryDsl::load(self, conn)
    }

    fn fetch_one(self, conn: &'c mut AsyncPgConnection) -> Self::One {
        RunQueryDsl::get_result(self, conn)
    }
}

impl<'q, 'c, Q, U> Fetch<'q, 'c, SqliteAsync, U> for Q
where
    Q: diesel_async::methods::LoadQuery<'q, SqliteAsync, U> + 'q,
    U: Send + 'c,
{
    type All = diesel_async::return_futures::LoadFuture<'c, 'q, Q, SqliteAsync, U>;
    type One = diesel_async::return_futures::GetResult<'c, 'q, Q, SqliteAsync, U>;

    fn fetch_all(self, conn: &'c mut SqliteAsync) -> Self::All {
        RunQueryDsl::load(self, conn)
    }

    fn fetch_one(self, conn: &'c mut SqliteAsync) -> Self::One {
        RunQueryDsl::get_result(self, conn)
    }
}

/// A statement that changes rows, written once for both backends like [`Fetch`]:
/// `query.run(conn).await` answers how many rows it changed.
pub(crate) trait Run<'q, 'c, C> {
    type Count: std::future::Future<Output = diesel::QueryResult<usize>>;
    fn run(self, conn: &'c mut C) -> Self::Count;
}

impl<'q, 'c, Q> Run<'q, 'c, SqliteConnection> for Q
where
    Q: diesel::query_dsl::methods::ExecuteDsl<SqliteConnection>,
{
    type Count = std::future::Ready<diesel::QueryResult<usize>>;

    fn run(self, conn: &'c mut SqliteConnection) -> Self::Count {
        std::future::ready(diesel::query_dsl::methods::ExecuteDsl::execute(self, conn))
    }
}

impl<'q, 'c, Q> Run<'q, 'c, AsyncPgConnection> for Q
where
    Q: diesel_async::methods::ExecuteDsl<AsyncPgConnection> + 'q,
{
    type Count = <AsyncPgConnection as diesel_async::AsyncConnectionCore>::ExecuteFuture<'c, 'q>;

    fn run(self, conn: &'c mut AsyncPgConnection) -> Self::Count {
        RunQueryDsl::execute(self, conn)
    }
}

impl<'q, 'c, Q> Run<'q, 'c, SqliteAsync> for Q
where
    Q: diesel_async::methods::ExecuteDsl<SqliteAsync> + 'q,
{
    type Count = <SqliteAsync as diesel_async::AsyncConnectionCore>::ExecuteFuture<'c, 'q>;

    fn run(self, conn: &'c mut SqliteAsync) -> Self::Count {
        RunQueryDsl::execute(self, conn)
    }
}

/// An `UPDATE` or upsert whose SQL has one fixed shape, kept prepared on its connection:
/// every such statement in `db/` ends in `.prepared()` ([`KeepPrepared`]).
///
/// diesel prepares every `UPDATE` and every `ON CONFLICT DO UPDATE` anew each time it runs
/// (`QueryFragment::is_safe_to_cache_prepared` answers `false` for them: a changeset of
/// optional fields could take a shape per combination). Through diesel-async on PostgreSQL
/// that is a round trip of its own to prepare, then a parse, a plan and a close on the
/// server, every run: 11 of the 23 statements of creating a model with three versions went
/// that way. Wrapped, the statement is cached under its SQL text, once per connection.
///
/// Not for a changeset struct of optional fields (`ModelChanges`), a multi-row insert or an
/// `IN` list of varying length (SQLite spells out one placeholder per value): those would
/// fill the cache with a shape per combination. Inserts of whole rows need no wrapper: their
/// structs write an absent value as NULL (`treat_none_as_default_value = false`), one shape
/// that diesel caches by itself. (`is_safe_to_cache_prepared` is a method diesel leaves out
/// of its docs, kept for backends; a change to it fails the build, not a query.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prepared<Q>(Q);

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Prepared<Q>
where
    Q: diesel::query_builder::QueryFragment<DB>,
    DB: diesel::backend::Backend,
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

/// `.prepared()` on a statement wraps it in [`Prepared`].
pub(crate) trait KeepPrepared: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q> KeepPrepared for Q {}

/// No static id: the cache key is then the SQL text, which tells the shapes apart.
impl<Q> diesel::query_builder::QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> diesel::RunQueryDsl<C> for Prepared<Q> {}

/// The backend a connection speaks, so a statement built as text can be typed by the
/// connection it will run on (see `bulk::query`).
pub(crate) trait Speaks {
    type Backend: diesel::backend::Backend;
}

impl Speaks for SqliteConnection {
    type Backend = diesel::sqlite::Sqlite;
}

impl Speaks for AsyncPgConnection {
    type Backend = diesel::pg::Pg;
}

/// Runs the read `$body` (statements through [`Fetch`]) with `$conn` bound to a pooled
/// connection of whichever backend `$db` uses; evaluates to the body's `Result`.
///
/// On SQLite the whole body runs in one blocking call, so what it uses is moved in and must be
/// owned, and it may await nothing but `Fetch` futures (anything else panics: it would block a
/// thread, or wait for a second connection while holding one). A request dropped meanwhile
/// waits for the whole body, not one statement. A panic in the body discards the connection and
/// goes on unwinding in the request, as it would on PostgreSQL.
macro_rules! read {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db.pool() {
            $crate::db::Pool::Sqlite(pool) => {
                $crate::db::on_sqlite_thread(
                    pool,
                    move |$conn: &mut diesel::sqlite::SqliteConnection| {
                        futures::FutureExt::now_or_never(async move { $body })
                            .expect("a read! body awaits only Fetch futures")
                    },
                )
                .await?
            }
            $crate::db::Pool::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err($crate::error::AppError::from)?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
                async { $body }.await
            }
        }
    };
}
pub(crate) use read;

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` uses.
macro_rules! with_conn {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db.pool() {
            $crate::db::Pool::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err($crate::error::AppError::from)?;
                let $conn: &mut $crate::db::SqliteAsync = &mut pooled;
                $body
            }
            $crate::db::Pool::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err($crate::error::AppError::from)?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            backend_of("sqlite://./data/registry.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            sqlite_path("sqlite://./data/registry.db"),
            Some("./data/registry.db")
        );
        assert_eq!(backend_of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert!(backend_of("mysql://u@h/db").is_err());
    }

    #[test]
    fn statement_logs_carry_no_values() {
        assert_eq!(
            statement_text("INSERT INTO s (k) VALUES (?) -- binds: [\"secret\"]"),
            "INSERT INTO s (k) VALUES (?)"
        );
        assert_eq!(statement_text("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://me:s3cret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite://./data/r.db"), "sqlite://./data/r.db");
    }
}
