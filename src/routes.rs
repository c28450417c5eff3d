//! The shapes of the REST sidecar that more than one layer needs: the paths `http` serves and
//! `domain` signs URLs for, and the header that names a download. Spelled once, here, so a
//! signed URL always names a route that exists. A leaf: it imports only value types.

use crate::values::Id;

/// Route patterns, as the router declares them.
pub const CHUNK_ROUTE: &str = "/v1/uploads/{id}/chunks/{index}";
pub const DIRECT_UPLOAD_ROUTE: &str = "/v1/uploads/{id}/direct";
pub const DOWNLOAD_ROUTE: &str = "/v1/artifacts/{id}/download";

pub fn download_path(artifact: Id) -> String {
    DOWNLOAD_ROUTE.replace("{id}", &artifact.to_string())
}

pub fn direct_upload_path(session: Id) -> String {
    DIRECT_UPLOAD_ROUTE.replace("{id}", &session.to_string())
}

/// The chunk route of a session with `{index}` left for the client to fill in.
pub fn chunk_path_template(session: Id) -> String {
    CHUNK_ROUTE.replace("{id}", &session.to_string())
}

/// `attachment` with an ASCII fallback name and the exact name in RFC 5987 form: quotes,
/// backslashes and non-ASCII never reach the plain parameter.
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+ ()[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_safe() {
        assert_eq!(
            content_disposition("a\"b é.bin"),
            "attachment; filename=\"a_b _.bin\"; filename*=UTF-8''a%22b%20%C3%A9.bin"
        );
    }

    #[test]
    fn paths_follow_the_routes() {
        let id: Id = "0190a0b0-0000-7000-8000-000000000000".parse().unwrap();
        assert_eq!(download_path(id), format!("/v1/artifacts/{id}/download"));
        assert_eq!(direct_upload_path(id), format!("/v1/uploads/{id}/direct"));
        assert_eq!(
            chunk_path_template(id),
            format!("/v1/uploads/{id}/chunks/{{index}}")
        );
    }
}
