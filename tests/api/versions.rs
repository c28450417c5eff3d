//! Model versions: numbering, labels, the current version, the lifecycle, lists, quotas.

use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateModelVersionInput!) { createModelVersion(input: $input) { modelVersion { id version number lifecycle description releaseDate trainingRunId metrics model { id } } } }";
const UPDATE: &str = "mutation($input: UpdateModelVersionInput!) { updateModelVersion(input: $input) { modelVersion { id version description metrics } } }";
const PUBLISH: &str = "mutation($input: ModelVersionIdInput!) { publishModelVersion(input: $input) { modelVersion { lifecycle } } }";
const DEPRECATE: &str = "mutation($input: ModelVersionIdInput!) { deprecateModelVersion(input: $input) { modelVersion { lifecycle } } }";
const DELETE: &str = "mutation($input: ModelVersionIdInput!) { deleteModelVersion(input: $input) { deletedModelVersionId model { versionCount currentVersion { id } } } }";
const SET_CURRENT: &str = "mutation($input: ModelVersionIdInput!) { setCurrentModelVersion(input: $input) { model { currentVersion { id version } } } }";
const MODEL: &str = "query($id: ID!) { model(id: $id) { versionCount currentVersion { version } latestPublishedVersion { version } versions { totalCount edges { node { version number } } } } }";

fn labels(versions: &Value) -> Vec<&str> {
    versions["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["version"].as_str().unwrap())
        .collect()
}

backends! {
    async fn publishing_races_deleting_the_last_file_safely(app) {
        // Publish and delete the only file at once: either the version is published with its
        // file, or the file is gone and the version is still a draft; never a published
        // version without files.
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "racy", json!({})).await;
        for round in 0..12 {
            let version = app.create_version(&app.admin, &model, &format!("v{round}")).await;
            let artifact = app.upload(&app.admin, &model, Some(&version), "w.bin", b"w").await["id"].clone();
            let (published, deleted) = tokio::join!(
                app.gql(&app.admin, "mutation($v: ID!) { publishModelVersion(input: { id: $v }) { modelVersion { id } } }", json!({ "v": version })),
                app.gql(&app.admin, "mutation($a: ID!) { deleteArtifact(input: { id: $a }) { artifact { id } } }", json!({ "a": artifact })),
            );
            let state = app
                .ok(&app.admin, "query($v: ID!) { modelVersion(id: $v) { lifecycle artifacts { totalCount } } }", json!({ "v": version }))
                .await["modelVersion"]
                .clone();
            match state["lifecycle"].as_str().unwrap() {
                "PUBLISHED" => {
                    assert_eq!(state["artifacts"]["totalCount"], 1, "round {round}: {deleted}");
                    assert_eq!(deleted["errors"][0]["extensions"]["code"], "PRECONDITION_FAILED");
                }
                _ => {
                    assert_eq!(state["artifacts"]["totalCount"], 0, "round {round}: {published}");
                    assert_eq!(published["errors"][0]["extensions"]["code"], "PRECONDITION_FAILED");
                }
            }
        }
    }

    async fn versions_are_numbered_and_the_first_becomes_current(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let data = app
            .ok(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v1.0.0", "description": "first", "releaseDate": "2026-11-01T12:00:00Z", "trainingRunId": "run-7", "metrics": { "auc": 0.91 } } }))
            .await;
        let v1 = &data["createModelVersion"]["modelVersion"];
        assert_eq!(v1["number"], 1);
        assert_eq!(v1["lifecycle"], "DRAFT");
        assert_eq!(v1["releaseDate"], "2026-11-01T12:00:00Z");
        assert_eq!(v1["metrics"], json!({ "auc": 0.91 }));
        assert_eq!(v1["model"]["id"], model);
        let v2 = app.create_version(&app.admin, &model, "v2").await;
        let v3 = app.create_version(&app.admin, &model, "v3").await;
        let read = app.ok(&app.admin, MODEL, json!({ "id": model })).await;
        assert_eq!(read["model"]["versionCount"], 3);
        assert_eq!(read["model"]["currentVersion"]["version"], "v1.0.0");
        assert_eq!(labels(&read["model"]["versions"]), ["v3", "v2", "v1.0.0"], "newest first");

        // Numbers are never reused, even after a delete.
        app.ok(&app.admin, DELETE, json!({ "input": { "id": v3 } })).await;
        let v4 = app.ok(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v4" } })).await;
        assert_eq!(v4["createModelVersion"]["modelVersion"]["number"], 4);

        let current = app.ok(&app.admin, SET_CURRENT, json!({ "input": { "id": v2 } })).await;
        assert_eq!(current["setCurrentModelVersion"]["model"]["currentVersion"]["version"], "v2");
        // Deleting the current version leaves the model without one.
        let deleted = app.ok(&app.admin, DELETE, json!({ "input": { "id": v2 } })).await;
        assert_eq!(deleted["deleteModelVersion"]["deletedModelVersionId"], v2);
        assert_eq!(deleted["deleteModelVersion"]["model"]["currentVersion"], Value::Null);
        assert_eq!(deleted["deleteModelVersion"]["model"]["versionCount"], 2);
        // A model without a current version takes the next version created as current; a
        // refused create leaves it without one.
        app.fails(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v1.0.0" } }), "CONFLICT").await;
        let read = app.ok(&app.admin, MODEL, json!({ "id": model })).await;
        assert_eq!(read["model"]["currentVersion"], Value::Null);
        app.create_version(&app.admin, &model, "v5").await;
        let read = app.ok(&app.admin, MODEL, json!({ "id": model })).await;
        assert_eq!(read["model"]["currentVersion"]["version"], "v5");
        assert_eq!(read["model"]["versionCount"], 3);
    }

    async fn labels_are_unique_per_model_and_well_formed(app) {
        let project = app.default_project().await;
        let a = app.create_model(&app.admin, &project, "a", json!({})).await;
        let b = app.create_model(&app.admin, &project, "b", json!({})).await;
        app.create_version(&app.admin, &a, "v1").await;
        app.fails(&app.admin, CREATE, json!({ "input": { "modelId": a, "version": "v1" } }), "CONFLICT").await;
        app.create_version(&app.admin, &b, "v1").await;
        let error = app.fails(&app.admin, CREATE, json!({ "input": { "modelId": a, "version": "../etc" } }), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "version");
        let error = app.fails(&app.admin, CREATE, json!({ "input": { "modelId": a, "version": "v9", "metrics": [1, 2] } }), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "metrics");
        let read = app.ok(&app.admin, MODEL, json!({ "id": a })).await;
        assert_eq!(read["model"]["versionCount"], 1, "failed creates leave nothing behind");
    }

    async fn lifecycle_transitions_are_guarded(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let v1 = app.create_version(&app.admin, &model, "v1").await;
        let error = app.fails(&app.admin, PUBLISH, json!({ "input": { "id": v1 } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("verified SHA-256"), "{error}");
        let error = app.fails(&app.admin, DEPRECATE, json!({ "input": { "id": v1 } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("DRAFT"), "names the current state: {error}");
        let read = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { lifecycle publishedAt } }", json!({ "id": v1 })).await;
        assert_eq!(read["modelVersion"], json!({ "lifecycle": "DRAFT", "publishedAt": null }));
        let model_read = app.ok(&app.admin, MODEL, json!({ "id": model })).await;
        assert_eq!(model_read["model"]["latestPublishedVersion"], Value::Null);
    }

    async fn drafts_can_be_edited(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let v1 = app.create_version(&app.admin, &model, "v1").await;
        app.create_version(&app.admin, &model, "v2").await;
        let data = app.ok(&app.admin, UPDATE, json!({ "input": { "id": v1, "version": "v1.1", "description": "better", "metrics": { "f1": 0.5 } } })).await;
        assert_eq!(data["updateModelVersion"]["modelVersion"], json!({ "id": v1, "version": "v1.1", "description": "better", "metrics": { "f1": 0.5 } }));
        app.fails(&app.admin, UPDATE, json!({ "input": { "id": v1, "version": "v2" } }), "CONFLICT").await;
        let cleared = app.ok(&app.admin, UPDATE, json!({ "input": { "id": v1, "description": null } })).await;
        assert_eq!(cleared["updateModelVersion"]["modelVersion"]["description"], Value::Null);
        assert_eq!(cleared["updateModelVersion"]["modelVersion"]["version"], "v1.1");
    }

    async fn version_lists_page_newest_first(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        for i in 1..=7 {
            app.create_version(&app.admin, &model, &format!("v{i}")).await;
        }
        let query = "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) { model(id: $id) { versions(first: $first, after: $after, last: $last, before: $before) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { version } } } } }";
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let page = app.ok(&app.admin, query, json!({ "id": model, "first": 3, "after": after })).await;
            let versions = &page["model"]["versions"];
            assert_eq!(versions["totalCount"], 7);
            seen.extend(labels(versions).into_iter().map(str::to_owned));
            if versions["pageInfo"]["hasNextPage"] == false { break; }
            after = versions["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(seen, ["v7", "v6", "v5", "v4", "v3", "v2", "v1"]);
        let tail = app.ok(&app.admin, query, json!({ "id": model, "last": 2 })).await;
        assert_eq!(labels(&tail["model"]["versions"]), ["v2", "v1"]);
        assert_eq!(tail["model"]["versions"]["pageInfo"]["hasPreviousPage"], true);
    }

    async fn version_by_id_and_node(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let v1 = app.create_version(&app.admin, &model, "v1").await;
        let data = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { version model { name } } node(id: $id) { __typename id } }", json!({ "id": v1 })).await;
        assert_eq!(data["modelVersion"], json!({ "version": "v1", "model": { "name": "m" } }));
        assert_eq!(data["node"], json!({ "__typename": "ModelVersion", "id": v1 }));
        let data = app.ok(&app.admin, "query($id: ID!) { node(id: $id) { __typename } }", json!({ "id": project })).await;
        assert_eq!(data["node"]["__typename"], "Project");
    }

    async fn monthly_version_quota_is_enforced(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        app.create_version(&app.admin, &model, "v1").await;
        let quotas = "mutation($input: UpdateProjectQuotasInput!) { updateProjectQuotas(input: $input) { project { maxVersionsPerMonth } } }";
        app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxVersionsPerMonth": 2 } })).await;
        let v2 = app.create_version(&app.admin, &model, "v2").await;
        let error = app.fails(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v3" } }), "QUOTA_EXCEEDED").await;
        assert!(error["message"].as_str().unwrap().contains('2'), "{error}");
        // Deleting a version does not hand the month's quota back.
        app.ok(&app.admin, DELETE, json!({ "input": { "id": v2 } })).await;
        app.fails(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v3" } }), "QUOTA_EXCEEDED").await;
        app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxVersionsPerMonth": 10 } })).await;
        let v3 = app.ok(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v3" } })).await;
        assert_eq!(v3["createModelVersion"]["modelVersion"]["number"], 3, "refused creates used no number");
    }

    async fn the_monthly_quota_counts_the_versions_of_every_model(app) {
        let project = app.default_project().await;
        let mut models = Vec::new();
        for name in ["a", "b", "c", "d"] {
            let model = app.create_model(&app.admin, &project, name, json!({})).await;
            app.create_version(&app.admin, &model, "v1").await;
            models.push(model);
        }
        let quotas = "mutation($input: UpdateProjectQuotasInput!) { updateProjectQuotas(input: $input) { project { maxVersionsPerMonth } } }";
        app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxVersionsPerMonth": 6 } })).await;
        app.create_version(&app.admin, &models[1], "v2").await;
        app.create_version(&app.admin, &models[2], "v2").await;
        for model in &models {
            app.fails(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v3" } }), "QUOTA_EXCEEDED").await;
        }
        let other = app.create_project("elsewhere").await;
        let elsewhere = app.create_model(&app.admin, &other, "e", json!({})).await;
        app.create_version(&app.admin, &elsewhere, "v1").await;
    }

    async fn concurrent_creates_across_models_respect_the_monthly_quota(app) {
        let project = app.default_project().await;
        let mut models = Vec::new();
        for i in 0..8 {
            models.push(app.create_model(&app.admin, &project, &format!("m{i}"), json!({})).await);
        }
        let quotas = "mutation($input: UpdateProjectQuotasInput!) { updateProjectQuotas(input: $input) { project { id } } }";
        app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxVersionsPerMonth": 3 } })).await;
        let attempts = models.iter().map(|model| {
            let app = &app;
            async move { app.gql(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": "v1" } })).await }
        });
        let results = futures::future::join_all(attempts).await;
        let created = results.iter().filter(|r| r.get("errors").is_none()).count();
        assert_eq!(created, 3, "{results:#?}");
        assert!(results.iter().filter(|r| r.get("errors").is_some()).all(|r| r["errors"][0]["extensions"]["code"] == "QUOTA_EXCEEDED"), "{results:#?}");
    }

    async fn concurrent_creates_on_one_model_take_distinct_numbers(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let attempts = (1..=6).map(|i| {
            let (app, model) = (&app, model.clone());
            async move { app.gql(&app.admin, CREATE, json!({ "input": { "modelId": model, "version": format!("v{i}") } })).await }
        });
        let results = futures::future::join_all(attempts).await;
        let mut numbers: Vec<i64> = results
            .iter()
            .map(|r| r["data"]["createModelVersion"]["modelVersion"]["number"].as_i64().unwrap_or_else(|| panic!("{r}")))
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6]);
        let read = app.ok(&app.admin, "query($id: ID!) { model(id: $id) { currentVersion { number } versions { totalCount } } }", json!({ "id": model })).await;
        assert_eq!(read["model"]["currentVersion"]["number"], 1, "the first number is the current version");
        assert_eq!(read["model"]["versions"]["totalCount"], 6);
    }

    async fn published_versions_are_frozen_and_can_be_deprecated(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let other = app.create_model(&app.admin, &project, "n", json!({})).await;
        let v1 = app.create_version(&app.admin, &model, "v1").await;
        let v2 = app.create_version(&app.admin, &model, "v2").await;
        app.create_version(&app.admin, &model, "v3").await;
        let n1 = app.create_version(&app.admin, &other, "n1").await;
        app.mark_published(&v1).await;
        app.mark_published(&v2).await;
        app.mark_published(&n1).await;

        // Through the batched list path and through a single lookup.
        let list = app
            .ok(&app.admin, "{ models(orderBy: { field: NAME, direction: ASC }) { edges { node { name latestPublishedVersion { version } } } } }", json!({}))
            .await;
        assert_eq!(
            list["models"]["edges"],
            json!([
                { "node": { "name": "m", "latestPublishedVersion": { "version": "v2" } } },
                { "node": { "name": "n", "latestPublishedVersion": { "version": "n1" } } }
            ])
        );

        let error = app.fails(&app.admin, UPDATE, json!({ "input": { "id": v2, "version": "v2b" } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("PUBLISHED"), "{error}");
        app.fails(&app.admin, UPDATE, json!({ "input": { "id": v2, "metrics": { "a": 1 } } }), "PRECONDITION_FAILED").await;
        let described = app.ok(&app.admin, UPDATE, json!({ "input": { "id": v2, "description": "release notes" } })).await;
        assert_eq!(described["updateModelVersion"]["modelVersion"]["description"], "release notes");
        let error = app.fails(&app.admin, PUBLISH, json!({ "input": { "id": v2 } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("PUBLISHED"), "{error}");

        let data = app.ok(&app.admin, DEPRECATE, json!({ "input": { "id": v2 } })).await;
        assert_eq!(data["deprecateModelVersion"]["modelVersion"]["lifecycle"], "DEPRECATED");
        let read = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { deprecatedAt publishedAt } }", json!({ "id": v2 })).await;
        assert!(read["modelVersion"]["deprecatedAt"].is_string() && read["modelVersion"]["publishedAt"].is_string());
        let error = app.fails(&app.admin, DEPRECATE, json!({ "input": { "id": v2 } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("DEPRECATED"), "{error}");
        let after = app.ok(&app.admin, MODEL, json!({ "id": model })).await;
        assert_eq!(after["model"]["latestPublishedVersion"]["version"], "v1");
    }

    async fn published_and_deprecated_versions_cannot_be_deleted(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        let v1 = app.create_version(&app.admin, &model, "v1").await;
        let v2 = app.create_version(&app.admin, &model, "v2").await;
        app.mark_published(&v1).await;
        app.mark_published(&v2).await;
        app.ok(&app.admin, DEPRECATE, json!({ "input": { "id": v2 } })).await;
        for (version, state) in [(&v1, "PUBLISHED"), (&v2, "DEPRECATED")] {
            let error = app.fails(&app.admin, DELETE, json!({ "input": { "id": version } }), "PRECONDITION_FAILED").await;
            assert!(error["message"].as_str().unwrap().contains(state), "{error}");
            let read = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { lifecycle } }", json!({ "id": version })).await;
            assert_eq!(read["modelVersion"]["lifecycle"], state, "the version is still there");
        }
        let v3 = app.create_version(&app.admin, &model, "v3").await;
        app.ok(&app.admin, DELETE, json!({ "input": { "id": v3 } })).await;
    }
}

/// PostgreSQL only (SQLite shows no list of its compiled statements): the statements every
/// create runs stay prepared on their connection, so the next create does not parse and plan
/// them again.
mod creates_keep_their_statements_prepared {
    use super::*;
    use diesel_async::RunQueryDsl;
    use model_registry::db::Pool;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        // One connection: every create runs on the one whose statements are listed.
        let app = crate::support::TestApp::configured(true, |c| c.db_pool_size = 1).await;
        let project = app.default_project().await;
        for name in ["first", "second"] {
            let model = app
                .create_model(&app.admin, &project, name, json!({}))
                .await;
            for label in ["v1", "v2"] {
                app.create_version(&app.admin, &model, label).await;
            }
        }
        let Pool::Postgres(pool) = app.app.db.pool() else {
            panic!("a PostgreSQL test")
        };
        let prepared: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
            "(SELECT string_agg(statement, E'\\n') FROM pg_prepared_statements)",
        ))
        .get_result(&mut pool.get().await.unwrap())
        .await
        .unwrap();
        for statement in [
            r#"INSERT INTO "models" ("id""#,
            r#"INSERT INTO "project_monthly_usage""#,
            r#"UPDATE "models" SET "next_version_number""#,
            r#"INSERT INTO "model_versions" ("id""#,
        ] {
            assert!(
                prepared.contains(statement),
                "`{statement}…` is not kept prepared; prepared are:\n{prepared}"
            );
        }
    }
}
