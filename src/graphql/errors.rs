//! Gives every GraphQL error an `extensions.code`.
//!
//! Errors from resolvers carry one already (see `crate::error`). Errors the engine raises before
//! a resolver runs (parse errors, unknown fields, wrong types, unknown enum values, malformed
//! ids, depth and complexity limits) are the client's input: BAD_USER_INPUT, with the argument
//! named where the message names one.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Response, ServerError};

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            label(error);
        }
        response
    }
}

fn label(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    let code = match extensions.get("code") {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => {
            extensions.set("code", "BAD_USER_INPUT");
            if let Some(field) = named_argument(&error.message) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_become_bad_user_input() {
        let mut error = ServerError::new(
            "Invalid value for argument \"input.productType\", enumeration type \"ProductType\" does not contain the value \"X\"",
            None,
        );
        label(&mut error);
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
}
