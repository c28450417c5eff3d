//! Checks every GraphQL request passes before the engine touches it.
//!
//! - **Nesting.** The parser and the validator recurse once per `[`, `{` or `(`: a 3 KB query
//!   of nested list literals overflowed the stack and aborted the process. The query text is
//!   measured by a flat scan before it is parsed, and the variables (already bounded by the
//!   JSON reader) before they are used; deeper than [`MAX_NESTING`] is BAD_USER_INPUT. Chains
//!   of fragments are bounded by their count ([`MAX_FRAGMENTS`]) for the same reason.
//! - **Depth and size of what is read.** Data fields may nest [`MAX_DEPTH`] deep, counted
//!   through fragments. Introspection (`__schema`, `__type`) is not counted there: every
//!   client's standard introspection query needs 9 levels of `ofType` alone. What bounds it
//!   instead is what makes it costly, lists inside lists: at most [`MAX_INTROSPECTION_LISTS`]
//!   on any path (the standard query uses `types → fields → args`). A query whose fragments,
//!   spelled out, would hold more than [`MAX_INLINED_FIELDS`] fields is refused before the
//!   engine's validator, which spells them out, runs.
//! - **Reads over GET.** A request marked [`ReadOnly`] may not run a mutation.
//! - **Control characters.** Every string an operation receives, from a literal or a variable,
//!   follows one rule (`domain::validate::forbidden_control`), so both databases see the same
//!   input: PostgreSQL cannot store NUL in text at all, and SQLite would store it.

use std::collections::HashMap;

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Pos, Positioned, ServerError, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value};

use super::errors::server_error;
use crate::domain::validate;
use crate::error::AppError;

/// Deepest nesting of brackets, braces and parentheses a request may use. The standard
/// introspection query of every client needs fewer than 20; 48 leaves room for any real
/// query and keeps recursion far from the stack's end.
pub const MAX_NESTING: usize = 48;

/// Most fragments one query may define: generated clients use dozens.
pub const MAX_FRAGMENTS: usize = 256;

/// Deepest nesting of data fields: enough for every real query of this schema (a model's
/// version's artifacts' package is 6), shallow enough to refuse recursive abuse.
pub const MAX_DEPTH: usize = 12;

/// Most introspection lists on one path (`types`, `fields`, `args`, …): each multiplies the
/// answer by the size of the schema.
pub const MAX_INTROSPECTION_LISTS: usize = 3;

/// Most introspection roots (`__schema`, `__type`) a query may hold, aliases and fragments
/// counted: each answers up to the whole schema, and every client sends one.
pub const MAX_INTROSPECTIONS: usize = 10;

/// Deepest the measuring walk goes, in selection sets and fragments entered. The engine has
/// already bounded operations (its recursion check runs during parsing); unused fragments it
/// has not, so the walk stops here instead of on the stack's end.
const MAX_WALK: usize = 128;

/// Most fields a query may hold once its fragments are spelled out. A fragment spread twice
/// in each of a chain of fragments doubles per link; validation would walk every copy.
pub const MAX_INLINED_FIELDS: usize = 100_000;

/// Marks a request that arrived by GET: it may read, never write.
pub struct ReadOnly;

/// The checks on the text and the variables, before anything recursive reads them.
pub(super) fn before_parse(query: &str, variables: &Variables) -> ServerResult<()> {
    check_query_nesting(query)?;
    for (name, value) in variables.iter() {
        if const_depth(value) > MAX_NESTING {
            return Err(refusal(
                None,
                name.as_str(),
                format!("variable `{name}` is nested more than {MAX_NESTING} levels deep"),
            ));
        }
    }
    Ok(())
}

/// The checks on the parsed document, before the engine validates it.
pub(super) fn after_parse(
    document: &ExecutableDocument,
    variables: &Variables,
    ctx: &ExtensionContext<'_>,
) -> ServerResult<()> {
    // The engine's fragment-cycle check recurses once per spread in a chain of fragments,
    // used or not: a flat query of 35,000 chained fragments would be as deep as nesting.
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(refusal(
            None,
            "query",
            format!("a query may define at most {MAX_FRAGMENTS} fragments"),
        ));
    }
    check_strings(document, variables)?;
    check_shape(document)?;
    if ctx.data_opt::<ReadOnly>().is_some() && writes(document, ctx) {
        return Err(server_error(
            AppError::MethodNotAllowed("a mutation is sent with POST; GET only reads".into()),
            None,
        ));
    }
    Ok(())
}

/// Whether the operation the request selects is a mutation (or a subscription). When the
/// selection is unclear (a name that selects nothing), any writing operation in the document
/// counts: the engine would refuse such a request anyway, and GET must never write.
fn writes(document: &ExecutableDocument, ctx: &ExtensionContext<'_>) -> bool {
    let name = ctx
        .data_opt::<OperationName>()
        .and_then(|n| n.0.as_deref())
        .filter(|n| !n.is_empty());
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(map), Some(name)) => map.get(name),
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => map.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    match operation {
        Some(operation) => operation.node.ty != OperationType::Query,
        None => document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Query),
    }
}

/// The operation name a GET request asked for: the extension context does not carry it.
pub struct OperationName(pub Option<String>);

/// What one selection set costs, its fragments spelled out.
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Nesting of data fields.
    depth: usize,
    /// Introspection lists on the worst path.
    lists: usize,
    /// Fields, each fragment counted once per spread (saturating).
    fields: usize,
    /// Introspection roots, counted like fields.
    introspections: usize,
}

impl Shape {
    fn widen(self, other: Shape) -> Shape {
        Shape {
            depth: self.depth.max(other.depth),
            lists: self.lists.max(other.lists),
            fields: self.fields.saturating_add(other.fields),
            introspections: self.introspections.saturating_add(other.introspections),
        }
    }
}

/// The introspection fields that answer lists.
const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "fields",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "args",
    "directives",
];

/// Measures selection sets, each fragment once per context (inside introspection or not):
/// however often a fragment is spread, the walk is linear in the query's text.
struct Measure<'a> {
    document: &'a ExecutableDocument,
    done: HashMap<(&'a str, bool), Shape>,
    /// Fragments being measured: a spread of one of them is a cycle, which validation reports.
    open: Vec<&'a str>,
    /// Selection sets entered on the current path, and whether it ever passed [`MAX_WALK`].
    level: usize,
    too_deep: bool,
}

impl<'a> Measure<'a> {
    fn set(&mut self, set: &'a SelectionSet, introspection: bool) -> Shape {
        if self.level >= MAX_WALK {
            self.too_deep = true;
            return Shape::default();
        }
        self.level += 1;
        let shape = self.items(set, introspection);
        self.level -= 1;
        shape
    }

    fn items(&mut self, set: &'a SelectionSet, introspection: bool) -> Shape {
        let mut shape = Shape::default();
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let entering = name == "__schema" || name == "__type";
                    let inside = introspection || entering;
                    let below = self.set(&field.node.selection_set.node, inside);
                    Shape {
                        depth: below.depth + usize::from(!inside),
                        lists: below.lists
                            + usize::from(introspection && INTROSPECTION_LISTS.contains(&name)),
                        fields: below.fields.saturating_add(1),
                        introspections: below
                            .introspections
                            .saturating_add(usize::from(entering && !introspection)),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.set(&fragment.node.selection_set.node, introspection)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), introspection)
                }
            };
            shape = shape.widen(inner);
        }
        shape
    }

    fn fragment(&mut self, name: &'a str, introspection: bool) -> Shape {
        if let Some(shape) = self.done.get(&(name, introspection)) {
            return *shape;
        }
        let document = self.document;
        let Some((key, fragment)) = document.fragments.get_key_value(name) else {
            return Shape::default();
        };
        if self.open.contains(&key.as_str()) {
            return Shape::default();
        }
        self.open.push(key.as_str());
        let shape = self.set(&fragment.node.selection_set.node, introspection);
        self.open.pop();
        self.done.insert((key.as_str(), introspection), shape);
        shape
    }
}

/// Refuses operations deeper than [`MAX_DEPTH`], introspection with more than
/// [`MAX_INTROSPECTION_LISTS`] lists on a path or more than [`MAX_INTROSPECTIONS`] roots, and
/// queries larger than [`MAX_INLINED_FIELDS`] spelled out.
fn check_shape(document: &ExecutableDocument) -> ServerResult<()> {
    let mut measure = Measure {
        document,
        done: HashMap::new(),
        open: Vec::new(),
        level: 0,
        too_deep: false,
    };
    let too_deep = || {
        refusal(
            None,
            "query",
            format!("the query is nested too deep: its fragments nest more than {MAX_WALK} levels"),
        )
    };
    let (mut fields, mut introspections) = (0usize, 0usize);
    for (_, operation) in document.operations.iter() {
        let shape = measure.set(&operation.node.selection_set.node, false);
        let pos = Some(operation.pos);
        if measure.too_deep {
            return Err(too_deep());
        }
        if shape.depth > MAX_DEPTH {
            return Err(refusal(
                pos,
                "query",
                format!(
                    "the query is nested too deep: data fields may nest at most {MAX_DEPTH} levels"
                ),
            ));
        }
        if shape.lists > MAX_INTROSPECTION_LISTS {
            return Err(refusal(
                pos,
                "query",
                format!(
                    "introspection nests lists too deep: at most {MAX_INTROSPECTION_LISTS} on one path"
                ),
            ));
        }
        fields = fields.saturating_add(shape.fields);
        introspections = introspections.saturating_add(shape.introspections);
    }
    // Unused fragments are validated too: each counts once.
    for name in document.fragments.keys() {
        fields = fields.saturating_add(measure.fragment(name.as_str(), false).fields);
    }
    if measure.too_deep {
        return Err(too_deep());
    }
    if introspections > MAX_INTROSPECTIONS {
        return Err(refusal(
            None,
            "query",
            format!(
                "a query may hold at most {MAX_INTROSPECTIONS} introspection fields (`__schema`, `__type`)"
            ),
        ));
    }
    if fields > MAX_INLINED_FIELDS {
        return Err(refusal(
            None,
            "query",
            format!(
                "the query holds more than {MAX_INLINED_FIELDS} fields once its fragments are spelled out"
            ),
        ));
    }
    Ok(())
}

/// BAD_USER_INPUT naming `field`.
fn refusal(pos: Option<Pos>, field: &str, message: String) -> ServerError {
    server_error(AppError::bad_input(field, message), pos)
}

/// The deepest nesting of `[`, `{` and `(` outside strings and comments, stopping early once
/// past the limit. A flat scan: it cannot itself run out of stack.
fn check_query_nesting(query: &str) -> ServerResult<()> {
    let bytes = query.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    let (mut line, mut line_start) = (1usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            // A comment runs to the end of the line, which the grammar ends at LF or CR.
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            // A block string's only escape is `\"""`; a lone backslash is text.
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                        continue;
                    }
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 3;
                continue;
            }
            // A string ends at its closing quote, or (malformed) at the end of the line.
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    let escapes = bytes[i] == b'\\'
                        && bytes
                            .get(i + 1)
                            .is_some_and(|b| !matches!(b, b'\n' | b'\r'));
                    i += if escapes { 2 } else { 1 };
                }
            }
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let pos = Pos {
                        line,
                        column: query[line_start..i].chars().count() + 1,
                    };
                    return Err(refusal(
                        Some(pos),
                        "query",
                        format!("the query is nested more than {MAX_NESTING} levels deep"),
                    ));
                }
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Nesting of a variable's value, measured without recursion.
fn const_depth(value: &ConstValue) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if depth > MAX_NESTING {
            break;
        }
        match value {
            ConstValue::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            ConstValue::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// Every argument of every field and directive, with variables replaced by their values.
fn check_strings(document: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value
                && variables.get(&definition.node.name.node).is_none()
            {
                check_const(
                    &default.node,
                    definition.node.name.node.as_str(),
                    default.pos,
                )?;
            }
        }
        check_directives(&operation.node.directives, variables)?;
        check_selections(&operation.node.selection_set, variables)?;
    }
    for fragment in document.fragments.values() {
        check_directives(&fragment.node.directives, variables)?;
        check_selections(&fragment.node.selection_set, variables)?;
    }
    Ok(())
}

fn check_selections(set: &Positioned<SelectionSet>, variables: &Variables) -> ServerResult<()> {
    for item in &set.node.items {
        match &item.node {
            Selection::Field(field) => check_field(field, variables)?,
            Selection::FragmentSpread(spread) => {
                check_directives(&spread.node.directives, variables)?;
            }
            Selection::InlineFragment(fragment) => {
                check_directives(&fragment.node.directives, variables)?;
                check_selections(&fragment.node.selection_set, variables)?;
            }
        }
    }
    Ok(())
}

fn check_field(field: &Positioned<Field>, variables: &Variables) -> ServerResult<()> {
    for (name, value) in &field.node.arguments {
        check_value(&value.node, name.node.as_str(), value.pos, variables)?;
    }
    check_directives(&field.node.directives, variables)?;
    check_selections(&field.node.selection_set, variables)
}

fn check_directives(
    directives: &[Positioned<Directive>],
    variables: &Variables,
) -> ServerResult<()> {
    for directive in directives {
        for (name, value) in &directive.node.arguments {
            check_value(&value.node, name.node.as_str(), value.pos, variables)?;
        }
    }
    Ok(())
}

fn check_value(value: &Value, path: &str, pos: Pos, variables: &Variables) -> ServerResult<()> {
    match value {
        Value::Variable(name) => match variables.get(name) {
            Some(bound) => check_const(bound, path, pos),
            None => Ok(()),
        },
        Value::String(text) => check_text(text, path, pos),
        Value::List(items) => items
            .iter()
            .try_for_each(|item| check_value(item, path, pos, variables)),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let path = format!("{path}.{key}");
            check_text(key.as_str(), &path, pos)?;
            check_value(item, &path, pos, variables)
        }),
        _ => Ok(()),
    }
}

fn check_const(value: &ConstValue, path: &str, pos: Pos) -> ServerResult<()> {
    match value {
        ConstValue::String(text) => check_text(text, path, pos),
        ConstValue::List(items) => items
            .iter()
            .try_for_each(|item| check_const(item, path, pos)),
        ConstValue::Object(map) => map.iter().try_for_each(|(key, item)| {
            let path = format!("{path}.{key}");
            check_text(key.as_str(), &path, pos)?;
            check_const(item, &path, pos)
        }),
        _ => Ok(()),
    }
}

fn check_text(text: &str, path: &str, pos: Pos) -> ServerResult<()> {
    match validate::forbidden_control(text) {
        Some(c) => Err(refusal(
            Some(pos),
            path,
            format!(
                "contains the control character U+{:04X}; only tab, line feed and carriage return are allowed",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{{ a(x: {}1{}) }}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        // The selection braces and the argument parentheses count too.
        assert!(check_query_nesting(&nested(MAX_NESTING - 2)).is_ok());
        assert!(check_query_nesting(&nested(MAX_NESTING - 1)).is_err());
        assert!(check_query_nesting(&nested(100_000)).is_err());
        let quoted = format!("{{ a(x: \"{}\") }}", "[".repeat(1000));
        assert!(check_query_nesting(&quoted).is_ok());
        let block = format!("{{ a(x: \"\"\"{}\"\"\") }}", "{".repeat(1000));
        assert!(check_query_nesting(&block).is_ok());
        let comment = format!("# {}\n{{ a }}", "(".repeat(1000));
        assert!(check_query_nesting(&comment).is_ok());
        let escaped = format!("{{ a(x: \"\\\"{}\") }}", "[".repeat(1000));
        assert!(check_query_nesting(&escaped).is_ok());
        // Once-missed shapes: a comment ended by CR, a backslash before a block string's end.
        let deep = format!("(x: {}1{})", "[".repeat(1000), "]".repeat(1000));
        assert!(check_query_nesting(&format!("{{ a #\r{deep} }}")).is_err());
        assert!(
            check_query_nesting(&format!("{{ a(y: \"\"\"\\\\\"\"\" \"\"\", x: {deep}) }}"))
                .is_err()
        );
        assert!(check_query_nesting(&format!("{{ a(y: \"\\\n{deep}")).is_err());
    }

    /// `{ a(y: <literal>, x: [[…1…]]) }`: a string literal before a literal nested past the
    /// limit.
    fn after_literal(literal: &str) -> String {
        let deep = MAX_NESTING + 5;
        format!(
            "{{ a(y: {literal}, x: {}1{}) }}",
            "[".repeat(deep),
            "]".repeat(deep)
        )
    }

    proptest::proptest! {
        /// Whatever a string or a comment holds, the nesting after it is counted: whenever the
        /// parser accepts such a query, the scan has refused it first.
        #[test]
        fn strings_and_comments_hide_no_nesting(text in r##"[a"\\\[{(#\r\n]{0,24}"##) {
            let block = format!("\"\"\"{}\"\"\"", text.replace("\"\"\"", "\\\"\"\""));
            let plain = format!(
                "\"{}\"",
                text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\r', "\\r")
            );
            let comment_lf = format!("{{ a #{}\n(x: {}1{}) }}", text.replace(['\n', '\r'], " "), "[".repeat(60), "]".repeat(60));
            let comment_cr = comment_lf.replacen('\n', "\r", 1);
            for query in [after_literal(&block), after_literal(&plain), comment_lf, comment_cr] {
                if async_graphql::parser::parse_query(&query).is_ok() {
                    proptest::prop_assert!(check_query_nesting(&query).is_err(), "{}", query);
                }
            }
        }

        /// Any text, however broken (unclosed strings, stray escapes, multi-byte characters),
        /// is scanned without a panic; without strings and comments, the verdict is the
        /// plain bracket depth's.
        #[test]
        fn the_scan_never_panics_and_counts_brackets(text in r##"[\[\]{}()"#\\\r\na\x{e9}]{0,400}"##) {
            let verdict = check_query_nesting(&text).is_ok();
            if !text.contains('"') && !text.contains('#') {
                let (mut depth, mut deepest) = (0usize, 0usize);
                for c in text.chars() {
                    match c {
                        '[' | '{' | '(' => {
                            depth += 1;
                            deepest = deepest.max(depth);
                        }
                        ']' | '}' | ')' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                proptest::prop_assert_eq!(verdict, deepest <= MAX_NESTING);
            }
        }
    }

    #[test]
    fn variable_depth_is_measured_without_recursion() {
        let mut value = ConstValue::Number(1.into());
        for _ in 0..10_000 {
            value = ConstValue::List(vec![value]);
        }
        assert!(const_depth(&value) > MAX_NESTING);
        // Deep values are dropped by hand: the default drop would recurse.
        let mut current = value;
        while let ConstValue::List(mut items) = current {
            current = items.pop().unwrap_or(ConstValue::Null);
        }
    }
}
