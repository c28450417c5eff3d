//! Input rules shared by every area: each failure names the field it is about.

use crate::error::AppError;
use crate::values::JsonText;

pub const NAME_MAX: usize = 200;
pub const SHORT_TEXT_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const LONG_TEXT_MAX: usize = 100_000;
pub const URL_MAX: usize = 2_048;
pub const JSON_MAX: usize = 256 * 1024;
pub const LIST_MAX: usize = 100;

/// The first character no string of the API may hold: control characters other than tab,
/// line feed and carriage return (so multi-line descriptions stay possible). NUL cannot be
/// stored by PostgreSQL at all; the others hide text in terminals and logs and break file
/// names and headers. Refusing them everywhere keeps both databases answering alike.
pub fn forbidden_control(value: &str) -> Option<char> {
    value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// A required, trimmed, bounded single-line text.
pub fn name(field: &str, value: &str) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "must not contain control characters",
        ));
    }
    bounded(field, trimmed, NAME_MAX)?;
    Ok(trimmed.to_owned())
}

pub fn bounded(field: &str, value: &str, max: usize) -> Result<(), AppError> {
    let length = value.chars().count();
    if length > max {
        return Err(AppError::bad_input(
            field,
            format!("is {length} characters long; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// An optional free text: bounded; empty or blank means absent.
pub fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, AppError> {
    match value {
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => {
            bounded(field, &v, max)?;
            if let Some(c) = forbidden_control(&v) {
                return Err(AppError::bad_input(
                    field,
                    format!("contains the control character U+{:04X}", u32::from(c)),
                ));
            }
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

/// Lower-case letters, digits and single dashes, 1–63 characters: safe in URLs and paths.
pub fn slug(field: &str, value: &str) -> Result<String, AppError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(value.to_owned())
    } else {
        Err(AppError::bad_input(
            field,
            format!(
                "`{value}` is not a slug: use 1–63 lower-case letters, digits and single dashes"
            ),
        ))
    }
}

/// A slug derived from a display name: `Churn Prediction (v2)` → `churn-prediction-v2`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut slug: String = out.trim_end_matches('-').chars().take(63).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        "model".to_owned()
    } else {
        slug
    }
}

pub fn url(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(value) = text(field, value, URL_MAX)? else {
        return Ok(None);
    };
    let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
    if !scheme_ok || value.chars().any(char::is_whitespace) || value.len() < 10 {
        return Err(AppError::bad_input(
            field,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(Some(value))
}

pub fn json_size(field: &str, value: &JsonText) -> Result<(), AppError> {
    if value.0.to_string().len() > JSON_MAX {
        return Err(AppError::bad_input(
            field,
            format!("is larger than {JSON_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A JSON Schema document: an object whose `type`, `properties` and `required`, where present,
/// have the shapes JSON Schema gives them. Deeper semantics are the schema author's.
pub fn json_schema(field: &str, value: Option<JsonText>) -> Result<Option<JsonText>, AppError> {
    let Some(value) = value else { return Ok(None) };
    json_size(field, &value)?;
    let bad = |message: &str| Err(AppError::bad_input(field, message));
    let Some(schema) = value.0.as_object() else {
        return bad("must be a JSON Schema object");
    };
    const TYPES: [&str; 7] = [
        "object", "array", "string", "number", "integer", "boolean", "null",
    ];
    match schema.get("type") {
        None => {}
        Some(serde_json::Value::String(t)) if TYPES.contains(&t.as_str()) => {}
        Some(serde_json::Value::Array(ts))
            if !ts.is_empty()
                && ts
                    .iter()
                    .all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))) => {}
        Some(_) => return bad("`type` must be one of the JSON Schema types or a list of them"),
    }
    if let Some(properties) = schema.get("properties") {
        match properties.as_object() {
            Some(props) if props.values().all(|p| p.is_object() || p.is_boolean()) => {}
            _ => return bad("`properties` must map names to schemas"),
        }
    }
    if let Some(required) = schema.get("required") {
        match required.as_array() {
            Some(names) if names.iter().all(|n| n.is_string()) => {}
            _ => return bad("`required` must be a list of property names"),
        }
    }
    Ok(Some(value))
}

/// Bounded, trimmed, de-duplicated short strings, in the order given.
pub fn labels(field: &str, values: Vec<String>) -> Result<Vec<String>, AppError> {
    if values.len() > LIST_MAX {
        return Err(AppError::bad_input(
            field,
            format!("at most {LIST_MAX} entries are allowed"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = name(field, &value)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Churn Prediction (v2)"), "churn-prediction-v2");
        assert_eq!(slugify("  ---  "), "model");
        assert!(slug("s", "good-slug-1").is_ok());
        assert!(slug("s", "Bad Slug").is_err());
        assert!(slug("s", "-x").is_err());
        assert!(slug("s", "../etc").is_err());
    }

    #[test]
    fn schemas() {
        let ok = JsonText(
            serde_json::json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "number"}}}),
        );
        assert!(json_schema("inputSchema", Some(ok)).is_ok());
        for bad in [
            serde_json::json!([1, 2]),
            serde_json::json!({"type": "banana"}),
            serde_json::json!({"required": "a"}),
            serde_json::json!({"properties": {"a": 3}}),
        ] {
            let err = json_schema("inputSchema", Some(JsonText(bad))).unwrap_err();
            assert_eq!(err.field(), Some("inputSchema"));
        }
    }

    #[test]
    fn text_bounds() {
        assert!(name("name", "").is_err());
        assert!(name("name", &"x".repeat(NAME_MAX + 1)).is_err());
        assert_eq!(name("name", "  a  ").unwrap(), "a");
        assert!(url("servingUrl", Some("ftp://x".into())).is_err());
        assert!(url("servingUrl", Some("https://models.example.com".into())).is_ok());
    }
}
