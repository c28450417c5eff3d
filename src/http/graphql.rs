//! `/graphql` as the GraphQL-over-HTTP specification has it, so every client works:
//!
//! - `POST` with a JSON body: one request, or an array of at most [`MAX_BATCH`] (Apollo's
//!   batch link), answered by an array in the same order.
//! - `GET ?query=&variables=&operationName=&extensions=`: queries only; a mutation is 405
//!   with `Allow: POST`. Persisted-query hashes work here too.
//! - `GET` without a query from a client that accepts HTML: the GraphiQL page.
//! - The answer is `application/graphql-response+json` when the client asks for it (and
//!   prefers it at least as much as `application/json`), otherwise `application/json`, which is
//!   also the answer to no `Accept` at all; a client that accepts neither gets 406.

use std::ops::ControlFlow;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::{closing, is_body_timeout, is_json, origin, sender};
use crate::app::App;
use crate::auth::Principal;
use crate::error::AppError;
use crate::graphql::response_cache::{Lookup, Probe, ResponseCache};
use crate::graphql::{self, RegistrySchema};

/// Most operations in one batched POST: Apollo's batch link sends 10 by default.
pub const MAX_BATCH: usize = 25;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The ranges of `Accept` (none when absent): each media type, lower-cased, with its quality.
fn accept_ranges(headers: &HeaderMap) -> Option<impl Iterator<Item = (String, f32)> + '_> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    Some(accept.split(',').map(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim().eq_ignore_ascii_case("q").then_some(value)
            })
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (media, q)
    }))
}

/// The media type of the answer, from `Accept`; `None`: the client accepts neither JSON form.
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let Some(ranges) = accept_ranges(headers) else {
        return Some(JSON);
    };
    // The most specific range that matches decides a type's quality (RFC 9110 §12.5.1):
    // `application/json;q=0, */*` refuses JSON.
    let (mut graphql, mut json, mut wildcard) = (None::<f32>, None::<f32>, None::<f32>);
    for (media, q) in ranges {
        let slot = match media.as_str() {
            GRAPHQL_RESPONSE => &mut graphql,
            JSON => &mut json,
            "application/*" | "*/*" => &mut wildcard,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old| old.max(q)));
    }
    let json = json.or(wildcard).unwrap_or(0.0);
    let graphql = graphql.unwrap_or(0.0);
    if graphql > 0.0 && graphql >= json {
        Some(GRAPHQL_RESPONSE)
    } else if json > 0.0 {
        Some(JSON)
    } else {
        None
    }
}

/// Whether a client accepts HTML: a browser opening the address.
fn wants_html(headers: &HeaderMap) -> bool {
    accept_ranges(headers).is_some_and(|mut ranges| ranges.any(|(media, _)| media == "text/html"))
}

fn not_acceptable() -> Response {
    let mut response = (
        StatusCode::NOT_ACCEPTABLE,
        Json(
            AppError::bad_input(
                "Accept",
                format!("GraphQL answers `{GRAPHQL_RESPONSE}` or `{JSON}`"),
            )
            .envelope(),
        ),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// The status of one operation's answer. Under `application/graphql-response+json` a request
/// that never executed (a syntax or validation error, a refused limit, an unknown persisted
/// query: no `data`, no error with a path) is 400, as the specification asks; under
/// `application/json` every GraphQL answer is 200, which older clients expect. A mutation
/// refused on GET is 405 either way.
fn status_of(response: &async_graphql::Response, media_type: &str) -> StatusCode {
    if method_refused(response) {
        StatusCode::METHOD_NOT_ALLOWED
    } else if media_type == GRAPHQL_RESPONSE
        && response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
    {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// The GraphQL answer as `media_type`.
fn answer(body: &impl serde::Serialize, media_type: &'static str, status: StatusCode) -> Response {
    match serialize(body) {
        Ok(bytes) => answer_bytes(bytes, media_type, status),
        Err(error) => error.into_response(),
    }
}

/// A GraphQL answer's body, or the INTERNAL error that it could not be written.
fn serialize(body: &impl serde::Serialize) -> Result<Bytes, AppError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| AppError::internal(format!("serializing a response: {e}")))
}

/// An answer already serialized (by [`answer`]'s rules, or kept by the response cache).
fn answer_bytes(bytes: Bytes, media_type: &'static str, status: StatusCode) -> Response {
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    // What a caller sees depends on its key: no shared cache may hand it to another.
    headers.insert(
        header::VARY,
        HeaderValue::from_static("accept, authorization"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

fn method_refused(response: &async_graphql::Response) -> bool {
    response.errors.iter().any(|error| {
        matches!(
            error.extensions.as_ref().and_then(|e| e.get("code")),
            Some(async_graphql::Value::String(code)) if code == "METHOD_NOT_ALLOWED"
        )
    })
}

pub(super) async fn post(
    State(app): State<App>,
    Extension(schema): Extension<RegistrySchema>,
    Extension(cache): Extension<ResponseCache>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_json(&headers) {
        return closing(AppError::UnsupportedMediaType(
            "a GraphQL request is a JSON body: send `Content-Type: application/json`".into(),
        ));
    }
    let Some(media_type) = negotiate(&headers) else {
        let mut response = not_acceptable();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    };
    let limit = app.config.graphql_body_limit;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let error = if is_body_timeout(&e) {
                AppError::RequestTimeout
            } else {
                AppError::PayloadTooLarge(format!("a GraphQL request may be at most {limit} bytes"))
            };
            return closing(error);
        }
    };
    let batch = match parse_body(&bytes) {
        Ok(batch) => batch,
        Err(error) => return error.into_response(),
    };
    let caller = sender(&app, &headers).await;
    let origin = origin(&app, &headers);
    let prepare =
        |request| graphql::request_data(request, app.clone(), caller.clone(), origin.clone());
    let requests = match batch {
        async_graphql::BatchRequest::Single(request) => request,
        async_graphql::BatchRequest::Batch(requests) => {
            let batch =
                async_graphql::BatchRequest::Batch(requests.into_iter().map(prepare).collect());
            return answer(
                &schema.execute_batch(batch).await,
                media_type,
                StatusCode::OK,
            );
        }
    };
    let probe = match consult(&cache, &app, &caller, &requests).await {
        ControlFlow::Break(body) => return answer_bytes(body, media_type, StatusCode::OK),
        ControlFlow::Continue(probe) => probe,
    };
    let mut request = prepare(requests);
    if let Some(probe) = &probe {
        request = request.data(probe.verdict());
    }
    execute(&schema, request, probe, media_type).await
}

/// The response cache's answer to a key's request (break), or what to execute it with.
async fn consult(
    cache: &ResponseCache,
    app: &App,
    caller: &Result<Principal, AppError>,
    request: &async_graphql::Request,
) -> ControlFlow<Bytes, Option<Probe>> {
    let Ok(principal) = caller else {
        return ControlFlow::Continue(None);
    };
    match cache.lookup(&app.db, principal, request).await {
        Lookup::Hit(body) => ControlFlow::Break(body),
        Lookup::Miss(probe) => ControlFlow::Continue(Some(probe)),
        Lookup::Skip => ControlFlow::Continue(None),
    }
}

/// Executes one request, and gives a clean answer to the response cache when it asked.
async fn execute(
    schema: &RegistrySchema,
    request: async_graphql::Request,
    probe: Option<Probe>,
    media_type: &'static str,
) -> Response {
    let response = schema.execute(request).await;
    let status = status_of(&response, media_type);
    let bytes = match serialize(&response) {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    if let Some(probe) = probe {
        probe.keep(&bytes, response.errors.is_empty());
    }
    answer_bytes(bytes, media_type, status)
}

/// One request (a JSON object) or a batch (a non-empty array of at most [`MAX_BATCH`]).
fn parse_body(bytes: &[u8]) -> Result<async_graphql::BatchRequest, AppError> {
    let not_graphql =
        |e: serde_json::Error| AppError::bad_input("body", format!("not a GraphQL request: {e}"));
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        let request = serde_json::from_slice(bytes).map_err(not_graphql)?;
        return Ok(async_graphql::BatchRequest::Single(request));
    }
    let items: Vec<serde_json::Value> = serde_json::from_slice(bytes).map_err(not_graphql)?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(AppError::bad_input(
            "body",
            format!(
                "a batch holds 1 to {MAX_BATCH} operations, not {}",
                items.len()
            ),
        ));
    }
    let requests = items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(not_graphql))
        .collect::<Result<Vec<async_graphql::Request>, _>>()?;
    Ok(async_graphql::BatchRequest::Batch(requests))
}

/// The parameters of a GET request, named as the specification names them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParams {
    fn into_request(self) -> Result<async_graphql::Request, AppError> {
        let json = |field: &str, text: Option<String>| -> Result<serde_json::Value, AppError> {
            match text.filter(|t| !t.is_empty()) {
                None => Ok(serde_json::Value::Object(Default::default())),
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| AppError::bad_input(field, format!("not JSON: {e}"))),
            }
        };
        let variables = json("variables", self.variables)?;
        let extensions = json("extensions", self.extensions)?;
        let mut request = async_graphql::Request::new(self.query.unwrap_or_default())
            .variables(async_graphql::Variables::from_json(variables));
        if let Some(name) = self.operation_name.filter(|n| !n.is_empty()) {
            request = request.operation_name(name);
        }
        if let serde_json::Value::Object(map) = extensions {
            for (key, value) in map {
                let value = async_graphql::Value::from_json(value).map_err(|e| {
                    AppError::bad_input("extensions", format!("not a GraphQL value: {e}"))
                })?;
                request.extensions.insert(key, value);
            }
        }
        Ok(request)
    }
}

pub(super) async fn get(
    State(app): State<App>,
    Extension(schema): Extension<RegistrySchema>,
    Extension(cache): Extension<ResponseCache>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let raw = request.uri().query().unwrap_or_default();
    let params: GetParams = match serde_urlencoded::from_str(raw) {
        Ok(params) => params,
        Err(e) => {
            return AppError::bad_input("query", format!("malformed query string: {e}"))
                .into_response();
        }
    };
    if params.query.is_none() && params.extensions.is_none() {
        if wants_html(headers) {
            return graphiql(&app);
        }
        return AppError::bad_input(
            "query",
            "send the operation as `?query=…` (reads only), or POST it as JSON",
        )
        .into_response();
    }
    let Some(media_type) = negotiate(headers) else {
        return not_acceptable();
    };
    let operation_name = params.operation_name.clone().filter(|n| !n.is_empty());
    let graphql_request = match params.into_request() {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let caller = sender(&app, headers).await;
    let origin = origin(&app, headers);
    let probe = match consult(&cache, &app, &caller, &graphql_request).await {
        ControlFlow::Break(body) => return answer_bytes(body, media_type, StatusCode::OK),
        ControlFlow::Continue(probe) => probe,
    };
    let mut graphql_request = graphql::request_data(graphql_request, app.clone(), caller, origin)
        .data(graphql::ReadOnly)
        .data(graphql::OperationName(operation_name));
    if let Some(probe) = &probe {
        graphql_request = graphql_request.data(probe.verdict());
    }
    execute(&schema, graphql_request, probe, media_type).await
}

/// The GraphiQL page, loading its scripts from `--graphiql-assets-url`.
fn graphiql(app: &App) -> Response {
    let config = serde_json::json!({
        "assets": app.config.graphiql_assets_url.trim_end_matches('/'),
        "endpoint": "/graphql",
    });
    // Inside a <script>: `<` is escaped so no value can close the element.
    let config = config.to_string().replace('<', "\\u003c");
    Html(GRAPHIQL_PAGE.replace("__CONFIG__", &config)).into_response()
}

const GRAPHIQL_PAGE: &str = include_str!("graphiql.html");

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_answer_type_follows_accept() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(JSON));
        assert_eq!(negotiate(&accept("*/*")), Some(JSON));
        assert_eq!(negotiate(&accept("application/json")), Some(JSON));
        assert_eq!(negotiate(&accept(GRAPHQL_RESPONSE)), Some(GRAPHQL_RESPONSE));
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(GRAPHQL_RESPONSE)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(JSON)
        );
        assert_eq!(negotiate(&accept("text/html")), None);
        assert_eq!(negotiate(&accept("application/json;q=0")), None);
        assert_eq!(negotiate(&accept("application/json;q=0, */*")), None);
        assert_eq!(negotiate(&accept("application/json;Q=0.5")), Some(JSON));
    }

    #[test]
    fn batches_are_bounded() {
        let one = r#"{"query":"{ viewer { role } }"}"#;
        let batch = |n: usize| format!("[{}]", vec![one; n].join(","));
        assert!(matches!(
            parse_body(batch(MAX_BATCH).as_bytes()),
            Ok(async_graphql::BatchRequest::Batch(b)) if b.len() == MAX_BATCH
        ));
        assert!(parse_body(batch(MAX_BATCH + 1).as_bytes()).is_err());
        assert!(parse_body(b"[]").is_err());
        assert!(matches!(
            parse_body(one.as_bytes()),
            Ok(async_graphql::BatchRequest::Single(_))
        ));
    }
}
