//! Keyset pagination shared by every list: a page request, a page, and opaque cursors.
//!
//! A cursor is the sort key and id of the row it points at, so pages stay stable while rows
//! are inserted before them (offsets would shift).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::values::Id;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The row's sort key, as text.
    #[serde(rename = "k")]
    pub key: String,
    pub id: Id,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(field: &str, text: &str) -> Result<Cursor, AppError> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| AppError::bad_input(field, "not a cursor this server issued"))
    }
}

/// Which slice of an ordered list to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: i64,
    /// Rows strictly after (or, when `backward`, strictly before) this one.
    pub cursor: Option<Cursor>,
    /// `last/before`: read the list from its end.
    pub backward: bool,
}

impl PageRequest {
    /// Relay arguments → a request: `first` defaults to 50, both are capped at 1000.
    pub fn from_relay(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageRequest, AppError> {
        if first.is_some() && last.is_some() {
            return Err(AppError::bad_input(
                "last",
                "pass either `first` or `last`, not both",
            ));
        }
        if after.is_some() && before.is_some() {
            return Err(AppError::bad_input(
                "before",
                "pass either `after` or `before`, not both",
            ));
        }
        let size = |field: &str, n: i32| {
            if n < 0 {
                Err(AppError::bad_input(field, "must not be negative"))
            } else {
                Ok(i64::from(n).min(MAX_PAGE_SIZE))
            }
        };
        if first.is_some() && before.is_some() {
            return Err(AppError::bad_input(
                "before",
                "`before` pages backward: use it with `last`",
            ));
        }
        if last.is_some() && after.is_some() {
            return Err(AppError::bad_input(
                "after",
                "`after` pages forward: use it with `first`",
            ));
        }
        let backward = last.is_some() || before.is_some();
        let limit = match (first, last) {
            (Some(n), _) => size("first", n)?,
            (_, Some(n)) => size("last", n)?,
            _ => DEFAULT_PAGE_SIZE,
        };
        let cursor = match (after, before) {
            (Some(c), _) => Some(Cursor::decode("after", &c)?),
            (_, Some(c)) => Some(Cursor::decode("before", &c)?),
            _ => None,
        };
        Ok(PageRequest {
            limit,
            cursor,
            backward,
        })
    }

    /// Read ascending in storage terms, given the list's own direction.
    pub fn ascending(&self, list_ascending: bool) -> bool {
        list_ascending != self.backward
    }

    /// Turns `limit + 1` fetched rows into a page in list order.
    pub fn finish<T>(&self, mut rows: Vec<T>, total: Option<i64>) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.backward {
            rows.reverse();
        }
        let (has_next, has_previous) = if self.backward {
            (self.cursor.is_some(), more)
        } else {
            (more, self.cursor.is_some())
        };
        Page {
            items: rows,
            has_next,
            has_previous,
            total,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
    pub has_previous: bool,
    /// Counted only when the client asked for `totalCount`.
    pub total: Option<i64>,
}

impl<T> Page<T> {
    /// The same page with every item turned into another value.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next: self.has_next,
            has_previous: self.has_previous,
            total: self.total,
        }
    }
}

/// `%`, `_` and `\` in user text match themselves in a LIKE pattern.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            key: "2026-01-01T00:00:00Z".into(),
            id: Id::new(),
        };
        assert_eq!(Cursor::decode("after", &cursor.encode()).unwrap(), cursor);
        assert_eq!(
            Cursor::decode("after", "%%%").unwrap_err().field(),
            Some("after")
        );
    }

    #[test]
    fn relay_arguments_are_bounded() {
        let page = PageRequest::from_relay(None, None, None, None).unwrap();
        assert_eq!(page.limit, DEFAULT_PAGE_SIZE);
        assert_eq!(
            PageRequest::from_relay(Some(5000), None, None, None)
                .unwrap()
                .limit,
            1000
        );
        assert!(PageRequest::from_relay(Some(-1), None, None, None).is_err());
        assert!(PageRequest::from_relay(Some(1), None, Some(1), None).is_err());
        assert!(
            PageRequest::from_relay(None, None, Some(3), None)
                .unwrap()
                .backward
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_A"), "%50\\%\\_a%");
    }
}
