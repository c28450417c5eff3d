//! Gives every GraphQL error an `extensions.code`.
//!
//! Errors from resolvers carry one already (see `crate::error`). Errors the engine raises before
//! a resolver runs (parse errors, unknown fields, wrong types, unknown enum values, malformed
//! ids, depth and complexity limits) are the client's input: BAD_USER_INPUT, with the argument
//! named where the message names one.

use async_graphql::{Pos, Response, ServerError};

/// An [`AppError`](crate::error::AppError) as an error of the engine's own phases (preparing,
/// parsing), with its code, through the one mapping of `crate::error`.
pub(crate) fn server_error(error: crate::error::AppError, pos: Option<Pos>) -> ServerError {
    let error = async_graphql::Error::from(error);
    let mut server = ServerError::new(error.message, pos);
    server.extensions = error.extensions;
    server
}

/// Labels every error of an answer; `query` is the text the request sent.
pub(super) fn label_all(response: &mut Response, query: &str) {
    for error in &mut response.errors {
        label(error, query);
    }
}

fn label(error: &mut ServerError, query: &str) {
    let field = named_argument(&error.message).or_else(|| {
        error
            .locations
            .first()
            .and_then(|pos| argument_at(query, *pos))
    });
    let extensions = error.extensions.get_or_insert_with(Default::default);
    let code = match extensions.get("code") {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => {
            extensions.set("code", "BAD_USER_INPUT");
            if let Some(field) = field {
                extensions.set("field", field);
            }
            "BAD_USER_INPUT".to_owned()
        }
    };
    metrics::counter!("mr_graphql_errors_total", "code" => code).increment(1);
}

/// `Invalid value for argument "input.name", …` → `input.name`.
fn named_argument(message: &str) -> Option<String> {
    let rest = &message[message.find("argument \"")? + "argument \"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A value that failed to parse is reported at its own position: the argument is the name
/// before the colon in front of it (`createModel(input: $input)` → `input`).
fn argument_at(query: &str, pos: Pos) -> Option<String> {
    let line = query.lines().nth(pos.line.checked_sub(1)?)?;
    let before: String = line.chars().take(pos.column.checked_sub(1)?).collect();
    let before = before.trim_end().strip_suffix(':')?.trim_end();
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &before[start..];
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_become_bad_user_input() {
        let mut error = ServerError::new(
            "Invalid value for argument \"input.productType\", enumeration type \"ProductType\" does not contain the value \"X\"",
            None,
        );
        label(&mut error, "");
        let ext = error.extensions.unwrap();
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("BAD_USER_INPUT"))
        );
        assert_eq!(
            ext.get("field"),
            Some(&async_graphql::Value::from("input.productType"))
        );
    }

    #[test]
    fn a_failed_variable_is_named_by_its_argument() {
        let query = "mutation($input: CreateModelInput!) {\n  createModel(input: $input) { model { id } } }";
        assert_eq!(
            argument_at(
                query,
                Pos {
                    line: 2,
                    column: 22
                }
            ),
            Some("input".to_owned())
        );
        assert_eq!(argument_at(query, Pos { line: 1, column: 1 }), None);
    }
}
