//! Null propagation as the GraphQL specification has it. The engine reports a failed field and
//! leaves its key out of the answer, whatever its type; clients (Apollo's cache, Relay,
//! codegen types) then meet a missing field. The specification instead sets the failed field
//! to null when its type allows, and otherwise its nearest nullable ancestor, up to `data`
//! itself: a failed non-null root field (`model(id:)` of an unknown id) makes `data` null.
//!
//! After execution, each error's path is walked through the operation (aliases and fragments
//! resolved to fields) and the schema's types, and the right place is nulled.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{Name, PathSegment, Response, ServerResult, Value, Variables};

pub struct NullPropagation;

impl ExtensionFactory for NullPropagation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NullPropagationExtension::default())
    }
}

/// One per request: keeps the parsed operation to resolve response keys to fields.
#[derive(Default)]
struct NullPropagationExtension {
    document: Mutex<Option<ExecutableDocument>>,
}

#[async_trait::async_trait]
impl Extension for NullPropagationExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Ok(mut slot) = self.document.lock() {
            *slot = Some(document.clone());
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        if response.errors.is_empty() {
            return response;
        }
        let document = self.document.lock().ok().and_then(|mut d| d.take());
        if let Some(document) = document {
            propagate(
                &ctx.schema_env.registry,
                &document,
                operation_name,
                &mut response,
            );
        }
        response
    }
}

/// A place in the answer and whether the schema lets it be null.
struct Place {
    depth: usize,
    nullable: bool,
}

fn propagate(
    registry: &Registry,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    response: &mut Response,
) {
    let operation = match operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(n, _)| n.map(Name::as_str) == Some(name)),
        None => document.operations.iter().next(),
    };
    let Some((_, operation)) = operation else {
        return;
    };
    let root = match operation.node.ty {
        OperationType::Query => registry.query_type.as_str(),
        OperationType::Mutation => match &registry.mutation_type {
            Some(name) => name.as_str(),
            None => return,
        },
        OperationType::Subscription => return,
    };
    let paths: Vec<Vec<PathSegment>> = response
        .errors
        .iter()
        .map(|e| e.path.clone())
        .filter(|p| !p.is_empty())
        .collect();
    for path in paths {
        let places = walk(
            registry,
            document,
            &operation.node.selection_set.node,
            root,
            &path,
        );
        // The failed field itself when nullable, else its nearest nullable ancestor.
        match places.iter().rev().find(|p| p.nullable) {
            Some(place) => set_null(&mut response.data, &path[..place.depth]),
            None => {
                response.data = Value::Null;
                return;
            }
        }
    }
}

/// The places along `path`, each with its nullability; empty when the path leaves the
/// operation (which the engine never reports).
fn walk<'a>(
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    mut set: &'a SelectionSet,
    mut parent: &'a str,
    path: &[PathSegment],
) -> Vec<Place> {
    let mut places = Vec::new();
    // The wrapped type of the field whose list the next index enters.
    let mut list_type = String::new();
    for (depth, segment) in path.iter().enumerate() {
        match segment {
            PathSegment::Field(key) => {
                let Some((field, on)) = find_field(document, set, key, parent) else {
                    return Vec::new();
                };
                let name = field.name.node.as_str();
                let Some(meta) = registry
                    .types
                    .get(on)
                    .or_else(|| registry.types.get(parent))
                    .and_then(|t| t.field_by_name(name))
                else {
                    return Vec::new();
                };
                places.push(Place {
                    depth: depth + 1,
                    nullable: !meta.ty.ends_with('!'),
                });
                list_type = unwrap_non_null(&meta.ty).to_owned();
                set = &field.selection_set.node;
                parent = named_type(&meta.ty);
            }
            PathSegment::Index(_) => {
                let item = list_type
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or_default()
                    .to_owned();
                places.push(Place {
                    depth: depth + 1,
                    nullable: !item.ends_with('!'),
                });
                list_type = unwrap_non_null(&item).to_owned();
            }
        }
    }
    places
}

fn unwrap_non_null(ty: &str) -> &str {
    ty.strip_suffix('!').unwrap_or(ty)
}

fn named_type(ty: &str) -> &str {
    ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// The field answering under `key` in `set`, and the type it is selected on (a fragment's
/// type condition, or `parent`).
fn find_field<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    key: &str,
    parent: &'a str,
) -> Option<(&'a Field, &'a str)> {
    for item in &set.items {
        let found = match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                let answers_as = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                (answers_as == key).then_some((field, parent))
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map_or(parent, |c| c.node.on.node.as_str());
                find_field(document, &fragment.node.selection_set.node, key, on)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .and_then(|fragment| {
                    let on = fragment.node.type_condition.node.on.node.as_str();
                    find_field(document, &fragment.node.selection_set.node, key, on)
                }),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Sets the value at `path` to null, if everything above it is still there.
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, above)) = path.split_last() else {
        *data = Value::Null;
        return;
    };
    let mut current = data;
    for segment in above {
        current = match (segment, current) {
            (PathSegment::Field(key), Value::Object(map)) => match map.get_mut(key.as_str()) {
                Some(value) => value,
                None => return,
            },
            (PathSegment::Index(i), Value::List(items)) => match items.get_mut(*i) {
                Some(value) => value,
                None => return,
            },
            _ => return,
        };
    }
    match (last, current) {
        (PathSegment::Field(key), Value::Object(map)) => {
            map.insert(Name::new(key), Value::Null);
        }
        (PathSegment::Index(i), Value::List(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}
