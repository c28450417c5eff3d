//! Artifacts: what may be stored and changed. Packages (`packages`) group a version's files;
//! `urls` decides how bytes are handed out (the storage service's own URL or this server's).

mod packages;
mod urls;

pub use packages::{NewPackage, PackageMember, create_package, package_members, visible_package};
pub use urls::{SignedUrl, redirect_url, server_signed_url, signed_download_url, url_ttl};

use crate::app::App;
use crate::auth::Principal;
use crate::db::artifacts::{self, Artifact, ArtifactChanges, ArtifactSet};
use crate::db::model_versions::{self, ModelVersion};
use crate::db::models::Model;
use crate::db::{Tx, endpoints};
use crate::domain::models::visible_model;
use crate::domain::validate;
use crate::domain::versions::visible_version;
use crate::error::AppError;
use crate::values::{ArtifactStatus, Role, VersionLifecycle};
use crate::values::{Id, JsonText, Patch, Timestamp};

const FILE_NAME_MAX: usize = 255;
const CONTENT_TYPE_MAX: usize = 127;

/// The descriptive fields of an upload, checked once for the chunked and the direct path.
pub struct ArtifactFields {
    pub file_name: String,
    pub content_type: String,
    pub version_label: Option<String>,
    pub training_run_id: Option<String>,
    pub external_uri: Option<String>,
    pub metadata: Option<JsonText>,
}

impl ArtifactFields {
    pub fn check(
        file_name: &str,
        content_type: Option<&str>,
        version_label: Option<String>,
        training_run_id: Option<String>,
        external_uri: Option<String>,
        metadata: Option<JsonText>,
    ) -> Result<ArtifactFields, AppError> {
        Ok(ArtifactFields {
            file_name: file_name_rule(file_name)?,
            content_type: content_type_rule(content_type)?,
            version_label: validate::text("versionLabel", version_label, validate::SHORT_TEXT_MAX)?,
            training_run_id: validate::text(
                "trainingRunId",
                training_run_id,
                validate::SHORT_TEXT_MAX,
            )?,
            external_uri: uri_rule(external_uri)?,
            metadata: metadata_rule(metadata)?,
        })
    }
}

/// A bare file name: what a download is saved as, so no folders, no `..`, no control characters.
pub fn file_name_rule(value: &str) -> Result<String, AppError> {
    let value = value.trim();
    let bad = |why: &str| AppError::bad_input("fileName", why.to_owned());
    if value.is_empty() || value == "." || value == ".." {
        return Err(bad("must name a file"));
    }
    if value.contains(['/', '\\']) {
        return Err(bad("must be a bare file name, without folders"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    validate::bounded("fileName", value, FILE_NAME_MAX)?;
    Ok(value.to_owned())
}

fn content_type_rule(value: Option<&str>) -> Result<String, AppError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok("application/octet-stream".to_owned());
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let essence = value.split(';').next().unwrap_or("");
    let ok = essence
        .split_once('/')
        .is_some_and(|(t, s)| token(t.trim()) && token(s.trim()))
        && value.is_ascii()
        && !value.chars().any(char::is_control);
    if !ok {
        return Err(AppError::bad_input(
            "contentType",
            "must be a media type such as `application/octet-stream`",
        ));
    }
    validate::bounded("contentType", value, CONTENT_TYPE_MAX)?;
    Ok(value.to_owned())
}

/// Where an artifact also lives, for people and tools that fetch it elsewhere. Only schemes
/// that name remote model stores are taken: frontends render this as a link, so
/// `javascript:` and `data:` would run or show content in a viewer's browser, and `file:`
/// would point at the viewer's (or a converter's) own disk.
pub const EXTERNAL_URI_SCHEMES: [&str; 8] =
    ["https", "http", "s3", "gs", "az", "abfss", "hf", "oci"];

fn uri_rule(value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(value) = validate::text("externalUri", value, validate::URL_MAX)? else {
        return Ok(None);
    };
    let value = value.trim().to_owned();
    let scheme_ok = value.split_once("://").is_some_and(|(scheme, rest)| {
        !rest.is_empty() && EXTERNAL_URI_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
    });
    if !scheme_ok || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::bad_input(
            "externalUri",
            format!(
                "must be an absolute URI with one of the schemes {} (such as `hf://org/model`)",
                EXTERNAL_URI_SCHEMES.join(", ")
            ),
        ));
    }
    Ok(Some(value))
}

fn metadata_rule(value: Option<JsonText>) -> Result<Option<JsonText>, AppError> {
    match value {
        Some(m) if !m.0.is_object() => {
            Err(AppError::bad_input("metadata", "must be a JSON object"))
        }
        Some(m) => {
            validate::json_size("metadata", &m)?;
            Ok(Some(m))
        }
        None => Ok(None),
    }
}

/// The serialization format: `metadata.format` when given, else the file name's extension.
pub fn format_of(file_name: &str, metadata: Option<&JsonText>) -> Option<String> {
    if let Some(format) = metadata
        .and_then(|m| m.0.get("format"))
        .and_then(|f| f.as_str())
        .map(|f| f.trim().to_ascii_lowercase())
        .filter(|f| !f.is_empty() && f.len() <= 32)
    {
        return Some(format);
    }
    let lower = file_name.to_ascii_lowercase();
    for double in ["tar.gz", "tar.zst", "tar.bz2"] {
        if lower.ends_with(&format!(".{double}")) {
            return Some(double.to_owned());
        }
    }
    let (_, ext) = lower.rsplit_once('.')?;
    let ok = !ext.is_empty() && ext.len() <= 16 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| ext.to_owned())
}

/// A published (or deprecated) version's artifacts are fixed: nothing is added or removed.
pub fn require_mutable(version: &ModelVersion) -> Result<(), AppError> {
    if version.lifecycle == VersionLifecycle::Draft {
        Ok(())
    } else {
        Err(AppError::precondition(format!(
            "version `{}` is {}: its artifacts cannot be added, replaced or deleted",
            version.version, version.lifecycle
        )))
    }
}

/// [`require_mutable`] again inside the write's transaction, with the version's row locked: a
/// publish committing between the first check and the write cannot slip a change into a
/// published version.
pub async fn lock_mutable(tx: &mut Tx<'_>, version: &ModelVersion) -> Result<(), AppError> {
    model_versions::lock(tx, version.id).await?;
    let lifecycle = model_versions::lifecycle_of(tx, version.id).await?;
    require_mutable(&ModelVersion {
        lifecycle,
        ..version.clone()
    })
}

/// `pull` saves a version's files by name, so two available artifacts of one version never
/// share a file name.
pub fn name_taken(file_name: &str) -> AppError {
    AppError::conflict(format!(
        "the version already has a file named `{file_name}`; upload it with `replace: true` to replace it (DRAFT versions only)"
    ))
}

/// Whether `file_name` is free in `version_id` now; with `replace`, a file holding the name may
/// be replaced, so it counts as free. Checked when a session opens, so a client learns before
/// sending any bytes; [`claim_name`] decides.
pub async fn check_name_free(
    app: &App,
    version_id: Id,
    file_name: &str,
    replace: bool,
) -> Result<(), AppError> {
    if replace {
        return Ok(());
    }
    let held = artifacts::list(&app.db, ArtifactSet::Version(version_id), None)
        .await?
        .iter()
        .any(|a| a.file_name == file_name);
    if held {
        Err(name_taken(file_name))
    } else {
        Ok(())
    }
}

/// Takes `file_name` in `version_id` for a new artifact inside `tx`: the version's row is
/// locked, so two uploads of one name cannot both pass. With `replace`, the artifact holding
/// the name is retired in the same transaction (and a package it is the primary of dissolved);
/// without, a held name is CONFLICT.
pub async fn claim_name(
    tx: &mut Tx<'_>,
    version_id: Id,
    file_name: &str,
    replace: bool,
    now: Timestamp,
) -> Result<(), AppError> {
    model_versions::lock(tx, version_id).await?;
    match artifacts::named(tx, version_id, file_name).await? {
        None => Ok(()),
        Some(held) if replace => {
            if let Some(package) = held.package_id {
                artifacts::dissolve_package_of_primary(tx, package, held.id).await?;
            }
            artifacts::retire(tx, ArtifactSet::One(held.id), now).await
        }
        Some(_) => Err(name_taken(file_name)),
    }
}

/// An available artifact whose model the caller may act on with `role`; otherwise NOT_FOUND.
pub async fn visible_artifact(
    app: &App,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<(Artifact, Model), AppError> {
    let artifact = artifacts::find(&app.db, id)
        .await?
        .filter(|a| a.status == ArtifactStatus::Available)
        .ok_or(AppError::NotFound("artifact"))?;
    let model = visible_model(&app.db, caller, artifact.model_id, role)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("artifact"),
            other => other,
        })?;
    Ok((artifact, model))
}

/// An available artifact the caller may download: one it sees, or a file of a version one of
/// its projects runs on an ACTIVE endpoint (a catalog model deployed on its own hardware).
pub async fn downloadable_artifact(
    app: &App,
    caller: &Principal,
    id: Id,
) -> Result<Artifact, AppError> {
    let artifact = artifacts::find(&app.db, id)
        .await?
        .filter(|a| a.status == ArtifactStatus::Available)
        .ok_or(AppError::NotFound("artifact"))?;
    match visible_model(&app.db, caller, artifact.model_id, Role::Viewer).await {
        Ok(_) => Ok(artifact),
        Err(AppError::NotFound(_)) => {
            let deployed = match artifact.version_id {
                Some(version) => {
                    endpoints::serves_version(&app.db, caller.visible_projects(), version).await?
                }
                None => false,
            };
            if deployed {
                Ok(artifact)
            } else {
                Err(AppError::NotFound("artifact"))
            }
        }
        Err(other) => Err(other),
    }
}

async fn version_of(
    app: &App,
    caller: &Principal,
    artifact: &Artifact,
) -> Result<Option<ModelVersion>, AppError> {
    match artifact.version_id {
        Some(id) => Ok(Some(
            visible_version(&app.db, caller, id, Role::Viewer).await?.0,
        )),
        None => Ok(None),
    }
}

/// Only the fields given change; null clears a nullable one.
#[derive(Debug)]
pub struct ArtifactUpdate {
    pub id: Id,
    /// True makes this the model's current artifact (the previous one stops being current).
    pub is_current: Option<bool>,
    pub version_label: Patch<String>,
    pub metadata: Patch<JsonText>,
}

pub async fn update(
    app: &App,
    caller: &Principal,
    input: ArtifactUpdate,
) -> Result<Artifact, AppError> {
    let (artifact, _) = visible_artifact(app, caller, input.id, Role::Editor).await?;
    let label = match input.version_label {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(v) => Some(validate::text(
            "versionLabel",
            Some(v),
            validate::SHORT_TEXT_MAX,
        )?),
    };
    let metadata = match input.metadata {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(m) => Some(metadata_rule(Some(m))?),
    };
    let fixed = if label.is_some() || metadata.is_some() {
        version_of(app, caller, &artifact).await?
    } else {
        None
    };
    if let Some(version) = &fixed {
        require_mutable(version)?;
    }
    let changes = ArtifactChanges {
        is_current: input.is_current,
        version_label: label,
        metadata,
        updated_at: Timestamp::now(),
    };
    app.db
        .transaction(async |tx| {
            if let Some(version) = &fixed {
                lock_mutable(tx, version).await?;
            }
            artifacts::update(tx, &artifact, &changes).await
        })
        .await
}

/// DELETED and gone from lists. The bytes stay while any other artifact names them, and for
/// the retention window after the last one goes.
pub async fn delete(app: &App, caller: &Principal, id: Id) -> Result<Artifact, AppError> {
    let (artifact, _) = visible_artifact(app, caller, id, Role::Editor).await?;
    let version = version_of(app, caller, &artifact).await?;
    if let Some(version) = &version {
        require_mutable(version)?;
    }
    let now = Timestamp::now();
    app.db
        .transaction(async |tx| {
            if let Some(version) = &version {
                lock_mutable(tx, version).await?;
            }
            // A package without its primary file is no longer a unit: release its sidecars.
            if let Some(package) = artifact.package_id {
                artifacts::dissolve_package_of_primary(tx, package, artifact.id).await?;
            }
            artifacts::retire(tx, ArtifactSet::One(artifact.id), now).await
        })
        .await?;
    artifacts::find(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("artifact"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_bare() {
        assert_eq!(
            file_name_rule(" model.safetensors ").unwrap(),
            "model.safetensors"
        );
        for bad in ["", "..", "a/b", "..\\x", "a\nb"] {
            assert_eq!(
                file_name_rule(bad).unwrap_err().field(),
                Some("fileName"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            format_of("m.SafeTensors", None).as_deref(),
            Some("safetensors")
        );
        assert_eq!(format_of("m.tar.gz", None).as_deref(), Some("tar.gz"));
        assert_eq!(format_of("README", None), None);
        let meta = JsonText(serde_json::json!({"format": "ONNX"}));
        assert_eq!(format_of("m.bin", Some(&meta)).as_deref(), Some("onnx"));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_rule(None).unwrap(), "application/octet-stream");
        assert_eq!(
            content_type_rule(Some("text/plain; charset=utf-8")).unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(content_type_rule(Some("nonsense")).is_err());
        assert!(uri_rule(Some("hf://org/model".into())).unwrap().is_some());
        assert!(uri_rule(Some("not a uri".into())).is_err());
    }
}
