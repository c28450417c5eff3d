//! Multi-row statements written as SQL text, for the batches telemetry ingest writes in a
//! [`BulkTx`]: upserts that add to the stored counters or overwrite a row whole, lookups and
//! updates joined to a list of values, which diesel's query builder does not express. Where
//! the text is the same on both databases, only the placeholders differ, and [`values`] writes
//! them in each one's style; the inference statements give PostgreSQL arrays instead
//! (`db::telemetry`).

use diesel::query_builder::{BoxedSqlQuery, SqlQuery};

use super::{Backend, BulkTx, Speaks};

impl BulkTx<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            BulkTx::Sqlite(_) => Backend::Sqlite,
            BulkTx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Parameters one statement binds at most: under SQLite's limit (32,766) and PostgreSQL's
/// (65,535).
const PARAMETERS_PER_STATEMENT: usize = 30_000;

/// `rows` in slices of as many rows of `columns` values as one statement may bind.
pub fn chunks<T>(rows: &[T], columns: usize) -> std::slice::Chunks<'_, T> {
    rows.chunks(PARAMETERS_PER_STATEMENT / columns)
}

/// `(?, ?), (?, ?)` on SQLite, `($1, $2), ($3, $4)` on PostgreSQL.
pub fn values(backend: Backend, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            n += 1;
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

/// A statement to bind values to, typed by the connection it will run on.
pub(crate) fn query<'f, C: Speaks>(
    _conn: &C,
    sql: String,
) -> BoxedSqlQuery<'f, C::Backend, SqlQuery> {
    diesel::sql_query(sql).into_boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        assert_eq!(values(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(values(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
    }
}
