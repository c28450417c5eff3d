//! Assembling an upload inside S3. The chunk objects become the blob through one multipart
//! upload whose parts are server-side copies (`UploadPartCopy`), so completion moves no bytes
//! through this server: it only reads what it has not hashed yet. Chunk objects are immutable
//! (named by generation), so what was hashed is what is copied. OpenDAL has no part-copy
//! operation; these four requests are signed here with the signing crates OpenDAL itself uses,
//! from the same settings and credential chain.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{Method, Request};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner};
use reqsign_core::{Context, OsEnv, ProvideCredentialChain, Signer};
use serde::Deserialize;

use crate::error::AppError;

/// S3's smallest part but the last.
const MIN_PART: u64 = 5 * 1024 * 1024;
/// S3's largest part, and its largest single copy.
const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
/// S3's most parts per upload.
const MAX_PARTS: usize = 10_000;
/// Part copies in flight at once.
const CONCURRENT_COPIES: usize = 8;

/// Characters S3 keeps as they are in a path (RFC 3986 unreserved, and `/`).
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// What `Storage::open` knows of an S3 store, as OpenDAL was given it.
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub virtual_host_style: bool,
}

pub struct S3Compose {
    http: reqwest::Client,
    signer: Signer<Credential>,
    /// `https://host/bucket` (path style) or `https://bucket.host` (virtual-host style).
    base: String,
    bucket: String,
    /// The key prefix inside the bucket: empty or ending in `/`.
    root: String,
}

impl S3Compose {
    pub fn new(settings: S3Settings) -> Result<S3Compose, anyhow::Error> {
        let endpoint = match settings.endpoint {
            Some(e) if e.starts_with("http") => e,
            Some(e) => format!("https://{e}"),
            None => format!("https://s3.{}.amazonaws.com", settings.region),
        };
        let endpoint = endpoint.trim_end_matches('/');
        let base = if settings.virtual_host_style {
            endpoint.replacen("//", &format!("//{}.", settings.bucket), 1)
        } else {
            format!("{endpoint}/{}", settings.bucket)
        };
        let prefix = settings.prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let ctx = Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_env(OsEnv)
            .with_http_send(opendal::HttpTransporter::default());
        let mut credentials =
            ProvideCredentialChain::new().push(DefaultCredentialProvider::builder().build());
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            let fixed = reqsign_aws_v4::StaticCredentialProvider::new(id, secret);
            credentials = credentials.push_front(match &settings.session_token {
                Some(token) => fixed.with_session_token(token),
                None => fixed,
            });
        }
        Ok(S3Compose {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()?,
            signer: Signer::new(ctx, credentials, RequestSigner::new("s3", &settings.region)),
            base,
            bucket: settings.bucket,
            root,
        })
    }

    /// Whether `parts` can be copied as S3 parts: none empty, each at most 5 GiB, each but the
    /// last at least 5 MiB, at most 10,000 of them.
    pub fn fits(parts: &[(String, Range<u64>)]) -> bool {
        let len = |r: &Range<u64>| r.end.saturating_sub(r.start);
        let sizes_fit = parts.iter().all(|(_, r)| (1..=MAX_PART).contains(&len(r)));
        let small_inside = parts.iter().rev().skip(1).any(|(_, r)| len(r) < MIN_PART);
        !parts.is_empty() && parts.len() <= MAX_PARTS && sizes_fit && !small_inside
    }

    /// Makes `target` the concatenation of `parts` (ranges of stored objects) without reading
    /// them: the object appears whole when the upload completes, or not at all.
    pub async fn compose(
        &self,
        parts: &[(String, Range<u64>)],
        target: &str,
    ) -> Result<(), AppError> {
        let created: InitiateMultipartUploadResult = self
            .call(
                "InitiateMultipartUploadResult",
                Method::POST,
                target,
                "uploads=",
                &[],
                Bytes::new(),
            )
            .await?;
        let upload = created.upload_id;
        let result = self.copy_and_complete(parts, target, &upload).await;
        if result.is_err() {
            let query = format!("uploadId={}", encode(&upload));
            if let Err(e) = self
                .send(Method::DELETE, target, &query, &[], Bytes::new())
                .await
            {
                tracing::warn!(target, error = ?e, "aborting a multipart upload failed");
            }
        }
        result
    }

    async fn copy_and_complete(
        &self,
        parts: &[(String, Range<u64>)],
        target: &str,
        upload: &str,
    ) -> Result<(), AppError> {
        let etags: Vec<String> = futures::stream::iter(parts.iter().cloned().enumerate())
            .map(|(i, (key, range))| self.copy_part(target, upload, i + 1, key, range))
            .buffered(CONCURRENT_COPIES)
            .try_collect()
            .await?;
        let mut body = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                xml_escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let query = format!("uploadId={}", encode(upload));
        let _: CompleteMultipartUploadResult = self
            .call(
                "CompleteMultipartUploadResult",
                Method::POST,
                target,
                &query,
                &[],
                Bytes::from(body),
            )
            .await?;
        Ok(())
    }

    /// Copies `range` of the object `key` as part `number`; answers the part's ETag.
    async fn copy_part(
        &self,
        target: &str,
        upload: &str,
        number: usize,
        key: String,
        range: Range<u64>,
    ) -> Result<String, AppError> {
        let source = format!("/{}/{}{key}", self.bucket, self.root);
        let headers = [
            (
                "x-amz-copy-source",
                utf8_percent_encode(&source, PATH).to_string(),
            ),
            (
                "x-amz-copy-source-range",
                format!("bytes={}-{}", range.start, range.end - 1),
            ),
        ];
        let query = format!("partNumber={number}&uploadId={}", encode(upload));
        let copied: CopyPartResult = self
            .call(
                "CopyPartResult",
                Method::PUT,
                target,
                &query,
                &headers,
                Bytes::new(),
            )
            .await?;
        Ok(copied.etag)
    }

    /// A signed request whose answer is XML of type `T`. S3 may answer a copy or a completion
    /// with 200 and an `<Error>` body, so the body is read as an error first.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        expected_root: &str,
        method: Method,
        key: &str,
        query: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<T, AppError> {
        let answer = self.send(method, key, query, headers, body).await?;
        let text = String::from_utf8_lossy(&answer);
        // The deserializer does not look at the root element, so it is checked here.
        let root = root_element(&text);
        if root.as_deref() == Some("Error") {
            let error: S3Error = quick_xml::de::from_str(&text).unwrap_or_default();
            return Err(AppError::internal(format_args!(
                "storage: S3 answered {}: {}",
                error.code, error.message
            )));
        }
        if root.as_deref() != Some(expected_root) {
            return Err(AppError::internal(format_args!(
                "storage: S3 answered something else than {expected_root}: {text}"
            )));
        }
        quick_xml::de::from_str(&text)
            .map_err(|e| AppError::internal(format_args!("storage: an S3 answer ({e}): {text}")))
    }

    async fn send(
        &self,
        method: Method,
        key: &str,
        query: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Bytes, AppError> {
        let url = format!(
            "{}/{}?{query}",
            self.base,
            utf8_percent_encode(&format!("{}{key}", self.root), PATH)
        );
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("content-length", body.len());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let (mut head, ()) = request
            .body(())
            .map_err(|e| AppError::internal(format_args!("storage: building {url}: {e}")))?
            .into_parts();
        self.signer
            .sign(&mut head, None)
            .await
            .map_err(|e| AppError::internal(format_args!("storage: signing for S3: {e}")))?;
        let request = reqwest::Request::try_from(Request::from_parts(head, body))
            .map_err(|e| AppError::internal(format_args!("storage: {e}")))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| AppError::internal(format_args!("storage: S3: {e}")))?;
        let status = response.status();
        let answer = response
            .bytes()
            .await
            .map_err(|e| AppError::internal(format_args!("storage: S3: {e}")))?;
        if !status.is_success() {
            return Err(AppError::internal(format_args!(
                "storage: S3 answered {status}: {}",
                String::from_utf8_lossy(&answer)
            )));
        }
        Ok(answer)
    }
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateMultipartUploadResult {
    upload_id: String,
}

#[derive(Deserialize)]
struct CopyPartResult {
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteMultipartUploadResult {
    #[allow(dead_code)]
    key: Option<String>,
}

/// `<Error><Code>…</Code><Message>…</Message></Error>`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct S3Error {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The name of the document's first element.
fn root_element(xml: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                return Some(e.local_name().as_ref().to_owned());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(len: u64) -> (String, Range<u64>) {
        ("k".to_owned(), 0..len)
    }

    #[test]
    fn the_root_element_is_read_past_the_declaration() {
        let xml = "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchKey</Code></Error>";
        assert_eq!(root_element(xml).as_deref(), Some("Error"));
        let copied = "<CopyPartResult xmlns=\"x\"><ETag>e</ETag></CopyPartResult>";
        assert_eq!(root_element(copied).as_deref(), Some("CopyPartResult"));
        assert_eq!(root_element("not xml"), None);
    }

    #[test]
    fn parts_fit_when_all_but_the_last_are_large_enough() {
        assert!(S3Compose::fits(&[part(MIN_PART), part(MIN_PART), part(1)]));
        assert!(S3Compose::fits(&[part(1)]));
        assert!(!S3Compose::fits(&[part(MIN_PART - 1), part(MIN_PART)]));
        assert!(!S3Compose::fits(&[]));
        assert!(!S3Compose::fits(&[part(0)]));
        let many = vec![part(MIN_PART); MAX_PARTS + 1];
        assert!(!S3Compose::fits(&many));
        assert!(!S3Compose::fits(&[part(MAX_PART + 1)]));
    }
}
