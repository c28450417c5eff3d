//! Null propagation as the GraphQL specification has it. The engine reports a failed field and
//! leaves its key out of the answer, whatever its type; clients (Apollo's cache, Relay,
//! codegen types) then meet a missing field. The specification instead sets the failed field
//! to null when its type allows, and otherwise its nearest nullable ancestor, up to `data`
//! itself: a failed non-null root field (`model(id:)` of an unknown id) makes `data` null.
//!
//! After execution, each error's path is walked through the operation (aliases and fragments
//! resolved to fields) and the schema's types, and the right place is nulled.

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{Name, PathSegment, Response, Value};

/// A place in the answer and whether the schema lets it be null.
struct Place {
    depth: usize,
    nullable: bool,
}

pub(super) fn propagate(
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
        let sets = [(&operation.node.selection_set.node, root)];
        // A path the walk cannot follow (it never happens for a path the engine reported)
        // leaves the answer as the engine wrote it.
        let Some(places) = walk(registry, document, &sets, &path, 0, String::new()) else {
            continue;
        };
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

/// The places along `path` (each with its nullability) from the selection sets `sets` (each
/// with the type it selects on). A response key may be selected more than once (merged
/// fields, fragments on different types): every candidate is tried, and the first through
/// which the rest of the path resolves wins. `at` is how much of `path` is walked already;
/// `list` is the type of the list the next index enters. `None`: the path leaves the operation.
fn walk<'a>(
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    sets: &[(&'a SelectionSet, &'a str)],
    path: &[PathSegment],
    at: usize,
    list: String,
) -> Option<Vec<Place>> {
    let Some(segment) = path.get(at) else {
        return Some(Vec::new());
    };
    // The place this segment names: the path's first `depth` segments.
    let depth = at + 1;
    match segment {
        PathSegment::Index(_) => {
            let item = list
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))?
                .to_owned();
            let place = Place {
                depth,
                nullable: !item.ends_with('!'),
            };
            let mut places = walk(
                registry,
                document,
                sets,
                path,
                depth,
                unwrap_non_null(&item).to_owned(),
            )?;
            places.insert(0, place);
            Some(places)
        }
        PathSegment::Field(key) => {
            let mut candidates = Vec::new();
            for (set, parent) in sets {
                find_fields(document, set, key, parent, &mut candidates);
            }
            let mut tried: Vec<(&str, &str)> = Vec::new();
            for (field, on) in &candidates {
                let name = field.name.node.as_str();
                // Candidates of one field on one type go on together (below): try them once.
                if tried.contains(&(name, *on)) {
                    continue;
                }
                tried.push((name, *on));
                let Some(meta) = registry.types.get(*on).and_then(|t| t.field_by_name(name)) else {
                    continue;
                };
                // Every selection of this key below the same kind of field goes on.
                let below: Vec<(&SelectionSet, &str)> = candidates
                    .iter()
                    .filter(|(other, _)| other.name.node == field.name.node)
                    .map(|(other, _)| (&other.selection_set.node, named_type(&meta.ty)))
                    .collect();
                let list = unwrap_non_null(&meta.ty).to_owned();
                if let Some(mut places) = walk(registry, document, &below, path, depth, list) {
                    places.insert(
                        0,
                        Place {
                            depth,
                            nullable: !meta.ty.ends_with('!'),
                        },
                    );
                    return Some(places);
                }
            }
            None
        }
    }
}

fn unwrap_non_null(ty: &str) -> &str {
    ty.strip_suffix('!').unwrap_or(ty)
}

/// The named type inside list and non-null wrappers (`[Model!]!` → `Model`).
pub(super) fn named_type(ty: &str) -> &str {
    ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// Every field answering under `key` in `set`, with the type it is selected on (a fragment's
/// type condition, or `parent`).
fn find_fields<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    key: &str,
    parent: &'a str,
    found: &mut Vec<(&'a Field, &'a str)>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                let answers_as = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                if answers_as == key {
                    found.push((field, parent));
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map_or(parent, |c| c.node.on.node.as_str());
                find_fields(document, &fragment.node.selection_set.node, key, on, found);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    let on = fragment.node.type_condition.node.on.node.as_str();
                    find_fields(document, &fragment.node.selection_set.node, key, on, found);
                }
            }
        }
    }
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
