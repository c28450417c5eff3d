//! Packages: a primary artifact and its sidecars of one version, deployed together.

use super::{lock_mutable, require_mutable};
use crate::app::App;
use crate::auth::Principal;
use crate::db::artifacts::{self, Artifact, PackageRow};
use crate::domain::validate;
use crate::domain::versions::visible_version;
use crate::error::AppError;
use crate::values::{ArtifactStatus, Id, Role, Timestamp};

const ROLE_MAX: usize = 64;

#[derive(Debug)]
pub struct PackageMember {
    pub artifact_id: Id,
    /// What the file is in the package: `weights`, `tokenizer`, `config`… (lower-case).
    pub role: String,
}

#[derive(Debug)]
pub struct NewPackage {
    pub version_id: Id,
    /// How the package deploys (`safetensors`, `gguf`, `onnx`, `mlflow`…).
    pub format: String,
    pub primary: PackageMember,
    pub sidecars: Option<Vec<PackageMember>>,
}

fn role_rule(field: &str, value: &str) -> Result<String, AppError> {
    let value = value.trim().to_ascii_lowercase();
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(AppError::bad_input(
            field,
            "a role is letters, digits, `_`, `-` and `.`",
        ));
    }
    validate::bounded(field, &value, ROLE_MAX)?;
    Ok(value)
}

/// Groups a primary artifact and its sidecars of one DRAFT version into a unit.
pub async fn create_package(
    app: &App,
    caller: &Principal,
    input: NewPackage,
) -> Result<PackageRow, AppError> {
    let (version, _) = visible_version(&app.db, caller, input.version_id, Role::Editor).await?;
    require_mutable(&version)?;
    let format = role_rule("format", &input.format)?;
    let mut members = vec![(
        "primary".to_owned(),
        input.primary.artifact_id,
        role_rule("primary.role", &input.primary.role)?,
    )];
    for (i, sidecar) in input.sidecars.unwrap_or_default().into_iter().enumerate() {
        members.push((
            format!("sidecars[{i}]"),
            sidecar.artifact_id,
            role_rule(&format!("sidecars[{i}].role"), &sidecar.role)?,
        ));
    }
    for (i, (field, id, role)) in members.iter().enumerate() {
        if members[..i].iter().any(|(_, other, _)| other == id) {
            return Err(AppError::bad_input(
                field.as_str(),
                "this artifact is listed twice",
            ));
        }
        if members[..i].iter().any(|(_, _, r)| r == role) {
            return Err(AppError::bad_input(
                field.as_str(),
                format!("two members have the role `{role}`"),
            ));
        }
        let artifact = artifacts::find(&app.db, *id).await?;
        match artifact {
            Some(a)
                if a.status == ArtifactStatus::Available && a.version_id == Some(version.id) =>
            {
                if a.package_id.is_some() {
                    return Err(AppError::conflict(format!(
                        "artifact {id} already belongs to a package"
                    )));
                }
            }
            _ => {
                return Err(AppError::bad_input(
                    format!("{field}.artifactId"),
                    "no available artifact of this version has this id",
                ));
            }
        }
    }
    let package = PackageRow {
        id: Id::new(),
        model_id: version.model_id,
        version_id: version.id,
        format,
        primary_artifact_id: input.primary.artifact_id,
        created_at: Timestamp::now(),
    };
    app.db
        .transaction(async |tx| {
            lock_mutable(tx, &version).await?;
            artifacts::insert_package(tx, &package).await?;
            for (_, id, role) in &members {
                // Only a member still free joins; a concurrent package taking it first wins.
                if !artifacts::join_package(tx, *id, package.id, role).await? {
                    return Err(AppError::conflict(format!(
                        "artifact {id} already belongs to a package"
                    )));
                }
            }
            Ok(())
        })
        .await?;
    Ok(package)
}

/// A package of a version the caller may see with `role`; otherwise NOT_FOUND.
pub async fn visible_package(
    app: &App,
    caller: &Principal,
    id: Id,
    role: Role,
) -> Result<PackageRow, AppError> {
    let package = artifacts::find_package(&app.db, id)
        .await?
        .ok_or(AppError::NotFound("artifact package"))?;
    visible_version(&app.db, caller, package.version_id, role)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("artifact package"),
            other => other,
        })?;
    Ok(package)
}

pub async fn package_members(app: &App, package: &PackageRow) -> Result<Vec<Artifact>, AppError> {
    let mut members =
        artifacts::list(&app.db, artifacts::ArtifactSet::Package(package.id), None).await?;
    // The primary first, then sidecars by role.
    members.sort_by(|a, b| {
        (a.id != package.primary_artifact_id, &a.package_role)
            .cmp(&(b.id != package.primary_artifact_id, &b.package_role))
    });
    Ok(members)
}
