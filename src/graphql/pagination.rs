//! Relay connections over [`Page`]s, with `totalCount`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

use crate::db::page::{Cursor, Page, PageRequest};
use crate::error::AppError;

#[derive(SimpleObject)]
pub struct TotalCount {
    /// Matching items across all pages.
    pub total_count: i64,
}

pub type Conn<T> = Connection<String, T, TotalCount>;

pub fn request(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<PageRequest, AppError> {
    PageRequest::from_relay(first, after, last, before)
}

/// A page of rows as a connection of their views.
pub fn connection<R, T: OutputType + From<R>>(
    page: Page<R>,
    cursor: impl Fn(&R) -> Cursor,
) -> Conn<T> {
    let mut conn = Connection::with_additional_fields(
        page.has_previous,
        page.has_next,
        TotalCount {
            total_count: page.total.unwrap_or_default(),
        },
    );
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(cursor(&item).encode(), T::from(item))),
    );
    conn
}

/// Pages a short list that is read whole (organizations, projects, keys) by its sort key.
pub fn slice<R, T: OutputType + From<R>>(
    items: Vec<R>,
    page: &PageRequest,
    cursor: impl Fn(&R) -> Cursor,
) -> Conn<T> {
    let total = items.len() as i64;
    let position = |c: &Cursor| items.iter().position(|item| cursor(item).id == c.id);
    let (start, end) = match (&page.cursor, page.backward) {
        (None, _) => (0, items.len()),
        (Some(c), false) => (position(c).map_or(items.len(), |i| i + 1), items.len()),
        (Some(c), true) => (0, position(c).unwrap_or(0)),
    };
    let window = end - start;
    let limit = page.limit as usize;
    let (from, to) = if page.backward {
        (end - window.min(limit), end)
    } else {
        (start, start + window.min(limit))
    };
    let has_previous = from > 0;
    let has_next = to < items.len();
    let items: Vec<R> = items.into_iter().skip(from).take(to - from).collect();
    connection(
        Page {
            items,
            has_next,
            has_previous,
            total: Some(total),
        },
        cursor,
    )
}
