//! Models: create with every field, patch semantics, uniqueness, deletion, lists, quotas.

use crate::support::names;
use serde_json::{Value, json};

const MODEL_FIELDS: &str = "id name slug description longDescription productType provider environment \
    riskClassification lifecycleStage modelFamily modelTaskType modelArchitecture framework intendedUse \
    limitations deploymentStatus servingUrl inputSchema outputSchema aiSystemType vendorName \
    vendorProductName vendorModelId deploymentEnvironment businessUseCase isGpai capabilities \
    tags { key value } enabled archived status versionCount createdAt updatedAt project { slug }";

fn get_model() -> String {
    format!("query($id: ID!) {{ model(id: $id) {{ {MODEL_FIELDS} }} }}")
}

const UPDATE: &str = "mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { id name slug description framework tags { key value } capabilities enabled archived modelFamily updatedAt } } }";
const DELETE: &str =
    "mutation($input: DeleteModelInput!) { deleteModel(input: $input) { model { id status } } }";
const CREATE: &str =
    "mutation($input: CreateModelInput!) { createModel(input: $input) { model { id name slug } } }";

backends! {
    async fn create_with_every_field_and_read_it_back(app) {
        let project = app.default_project().await;
        let full = json!({
            "slug": "churn-prediction",
            "description": "Predicts account churn risk.",
            "longDescription": "A gradient-boosted model over 30-day usage.",
            "productType": "AI_SYSTEM",
            "provider": "ml-platform",
            "environment": "production",
            "riskClassification": "limited",
            "lifecycleStage": "monitoring",
            "modelFamily": "TRADITIONAL_ML",
            "modelTaskType": "classification",
            "modelArchitecture": "XGBoost",
            "framework": "scikit-learn",
            "intendedUse": "Prioritize outreach.",
            "limitations": "Not calibrated for new accounts.",
            "deploymentStatus": "production",
            "servingUrl": "https://models.example.com/churn",
            "inputSchema": { "type": "object", "required": ["account_id"] },
            "outputSchema": { "type": "object", "properties": { "p": { "type": "number" } } },
            "aiSystemType": "decision-support",
            "vendorName": "Acme",
            "vendorProductName": "Acme Churn",
            "vendorModelId": "acme-churn-7",
            "deploymentEnvironment": "eu-west",
            "businessUseCase": "Retention",
            "isGpai": true,
            "capabilities": ["tabular", "scoring", "tabular"],
            "tags": [{ "key": "team", "value": "growth" }, { "key": "cost-center", "value": "42" }],
            "enabled": false
        });
        let id = app.create_model(&app.admin, &project, "Churn Prediction Model", full.clone()).await;
        let model = app.ok(&app.admin, &get_model(), json!({ "id": id })).await["model"].clone();
        for (field, value) in full.as_object().unwrap() {
            match field.as_str() {
                "capabilities" => assert_eq!(model[field], json!(["tabular", "scoring"])),
                "tags" => assert_eq!(model[field], json!([{ "key": "cost-center", "value": "42" }, { "key": "team", "value": "growth" }])),
                _ => assert_eq!(&model[field], value, "{field}"),
            }
        }
        assert_eq!(model["status"], "PENDING");
        assert_eq!(model["archived"], false);
        assert_eq!(model["versionCount"], 0);
        assert_eq!(model["project"]["slug"], "default");
        assert!(model["createdAt"].as_str().unwrap().ends_with('Z'));
    }

    async fn defaults_and_derived_slug(app) {
        let project = app.default_project().await;
        let id = app.create_model(&app.admin, &project, "Fraud Detector (v2)", json!({})).await;
        let model = app.ok(&app.admin, &get_model(), json!({ "id": id })).await["model"].clone();
        assert_eq!(model["slug"], "fraud-detector-v2");
        assert_eq!(model["productType"], "ML_MODEL");
        assert_eq!(model["environment"], "development");
        assert_eq!(model["deploymentStatus"], "development");
        assert_eq!(model["enabled"], true);
        assert_eq!(model["isGpai"], false);
        assert_eq!(model["capabilities"], json!([]));
        assert_eq!(model["tags"], json!([]));
    }

    async fn update_changes_only_what_is_given_and_null_clears(app) {
        let project = app.default_project().await;
        let id = app
            .create_model(&app.admin, &project, "m", json!({ "description": "keep me", "framework": "torch", "modelFamily": "GENAI" }))
            .await;
        let data = app.ok(&app.admin, UPDATE, json!({ "input": { "id": id, "framework": null, "archived": true, "tags": [{ "key": "a", "value": "b" }] } })).await;
        let model = &data["updateModel"]["model"];
        assert_eq!(model["description"], "keep me", "absent leaves a field alone");
        assert_eq!(model["framework"], Value::Null, "null clears a field");
        assert_eq!(model["modelFamily"], "GENAI");
        assert_eq!(model["archived"], true);
        assert_eq!(model["tags"], json!([{ "key": "a", "value": "b" }]));
        let data = app.ok(&app.admin, UPDATE, json!({ "input": { "id": id, "modelFamily": null, "enabled": false } })).await;
        assert_eq!(data["updateModel"]["model"]["modelFamily"], Value::Null);
        assert_eq!(data["updateModel"]["model"]["enabled"], false);
    }

    async fn null_for_a_field_that_cannot_be_empty_is_refused(app) {
        let project = app.default_project().await;
        let id = app.create_model(&app.admin, &project, "kept", json!({ "tags": [{ "key": "a", "value": "b" }] })).await;
        for field in ["name", "slug", "environment", "deploymentStatus", "productType", "isGpai", "enabled", "archived", "capabilities", "tags"] {
            let error = app.fails(&app.admin, UPDATE, json!({ "input": { "id": id, field: null, "description": "changed" } }), "BAD_USER_INPUT").await;
            assert_eq!(error["extensions"]["field"], field, "{error}");
        }
        let model = app.ok(&app.admin, &get_model(), json!({ "id": id })).await;
        assert_eq!(model["model"]["name"], "kept", "nothing changed");
        assert_eq!(model["model"]["description"], Value::Null);
    }

    async fn names_and_slugs_are_unique_per_project(app) {
        let project = app.default_project().await;
        let other = app.create_project("elsewhere").await;
        let first = app.create_model(&app.admin, &project, "Ranker", json!({})).await;
        let error = app.fails(&app.admin, CREATE, json!({ "input": { "projectId": project, "name": "Ranker" } }), "CONFLICT").await;
        assert!(error["message"].as_str().unwrap().contains("Ranker"));
        let error = app.fails(&app.admin, CREATE, json!({ "input": { "projectId": project, "name": "Other", "slug": "ranker" } }), "CONFLICT").await;
        assert!(error["message"].as_str().unwrap().contains("slug `ranker`"), "{error}");
        // The same name in another project is fine.
        app.create_model(&app.admin, &other, "Ranker", json!({})).await;
        // Renaming onto a taken name is refused and changes nothing.
        let second = app.create_model(&app.admin, &project, "Second", json!({})).await;
        app.fails(&app.admin, UPDATE, json!({ "input": { "id": second, "name": "Ranker" } }), "CONFLICT").await;
        let still = app.ok(&app.admin, &get_model(), json!({ "id": second })).await;
        assert_eq!(still["model"]["name"], "Second");
        assert_ne!(first, second);
    }

    async fn deleted_models_disappear_everywhere_and_free_their_name(app) {
        let project = app.default_project().await;
        let id = app.create_model(&app.admin, &project, "Doomed", json!({})).await;
        let version = app.create_version(&app.admin, &id, "v1").await;
        let data = app.ok(&app.admin, DELETE, json!({ "input": { "id": id } })).await;
        assert_eq!(data["deleteModel"]["model"]["status"], "DELETED");
        app.fails(&app.admin, &get_model(), json!({ "id": id }), "NOT_FOUND").await;
        app.fails(&app.admin, r#"{ modelByName(project: "default", name: "Doomed") { id } }"#, json!({}), "NOT_FOUND").await;
        app.fails(&app.admin, "query($id: ID!) { modelVersion(id: $id) { id } }", json!({ "id": version }), "NOT_FOUND").await;
        app.fails(&app.admin, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": id }), "NOT_FOUND").await;
        let list = app.ok(&app.admin, "{ models(filter: { includeArchived: true }) { totalCount } }", json!({})).await;
        assert_eq!(list["models"]["totalCount"], 0);
        app.fails(&app.admin, DELETE, json!({ "input": { "id": id } }), "NOT_FOUND").await;
        app.create_model(&app.admin, &project, "Doomed", json!({})).await;
    }

    async fn resolve_by_name_is_exact(app) {
        let project = app.default_project().await;
        let id = app.create_model(&app.admin, &project, "Whisper-Large", json!({})).await;
        let found = app.ok(&app.admin, r#"{ modelByName(project: "default", name: "Whisper-Large") { id } }"#, json!({})).await;
        assert_eq!(found["modelByName"]["id"], id);
        app.fails(&app.admin, r#"{ modelByName(project: "default", name: "whisper-large") { id } }"#, json!({}), "NOT_FOUND").await;
        app.fails(&app.admin, r#"{ modelByName(project: "nope", name: "Whisper-Large") { id } }"#, json!({}), "NOT_FOUND").await;
    }

    async fn filters_narrow_the_list(app) {
        let project = app.default_project().await;
        let other = app.create_project("vision").await;
        app.create_model(&app.admin, &project, "Alpha", json!({ "description": "Speech to TEXT", "modelFamily": "GENAI", "framework": "torch", "modelTaskType": "llm", "riskClassification": "high", "deploymentStatus": "production", "productType": "LLM_AGENT" })).await;
        app.create_model(&app.admin, &project, "Beta", json!({ "modelFamily": "TRADITIONAL_ML", "framework": "sklearn", "productType": "AI_APP" })).await;
        let archived = app.create_model(&app.admin, &project, "Gamma 100%", json!({ "framework": "torch" })).await;
        app.ok(&app.admin, UPDATE, json!({ "input": { "id": archived, "archived": true } })).await;
        app.create_model(&app.admin, &other, "Delta", json!({ "framework": "torch" })).await;

        let list = "query($filter: ModelFilter) { models(filter: $filter, orderBy: { field: NAME, direction: ASC }) { totalCount edges { node { name } } } }";
        let run = |filter: Value| {
            let app = &app;
            async move { names(&app.ok(&app.admin, list, json!({ "filter": filter })).await) }
        };
        assert_eq!(run(json!({})).await, ["Alpha", "Beta", "Delta"]);
        assert_eq!(run(json!({ "projectId": project })).await, ["Alpha", "Beta"]);
        assert_eq!(run(json!({ "q": "text" })).await, ["Alpha"], "description, case-insensitive");
        assert_eq!(run(json!({ "q": "BET" })).await, ["Beta"], "name, case-insensitive");
        assert_eq!(run(json!({ "q": "100%", "includeArchived": true })).await, ["Gamma 100%"], "wildcards match themselves");
        assert_eq!(run(json!({ "q": "%" })).await, Vec::<String>::new());
        assert_eq!(run(json!({ "modelFamily": "GENAI" })).await, ["Alpha"]);
        assert_eq!(run(json!({ "productTypes": ["AI_APP", "LLM_AGENT"] })).await, ["Alpha", "Beta"]);
        assert_eq!(run(json!({ "framework": "torch" })).await, ["Alpha", "Delta"]);
        assert_eq!(run(json!({ "framework": "torch", "includeArchived": true })).await, ["Alpha", "Delta", "Gamma 100%"]);
        assert_eq!(run(json!({ "modelTaskType": "llm" })).await, ["Alpha"]);
        assert_eq!(run(json!({ "riskClassification": "high" })).await, ["Alpha"]);
        assert_eq!(run(json!({ "deploymentStatus": "production" })).await, ["Alpha"]);
        assert_eq!(run(json!({ "status": "PENDING" })).await, ["Alpha", "Beta", "Delta"]);
        assert_eq!(run(json!({ "status": "READY" })).await, Vec::<String>::new());
    }

    async fn pages_are_stable_in_every_order(app) {
        let project = app.default_project().await;
        let mut created = Vec::new();
        for i in 0..7 {
            let name = format!("model-{}", (b'a' + ((i * 3) % 7) as u8) as char);
            app.create_model(&app.admin, &project, &name, json!({})).await;
            created.push(name);
        }
        let query = "query($first: Int, $after: String, $last: Int, $before: String, $order: ModelOrder) {
            models(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
                totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { name } } } }";
        for (field, direction) in [("NAME", "ASC"), ("NAME", "DESC"), ("CREATED_AT", "ASC"), ("CREATED_AT", "DESC"), ("UPDATED_AT", "DESC")] {
            let order = json!({ "field": field, "direction": direction });
            let all = names(&app.ok(&app.admin, query, json!({ "first": 100, "order": order })).await);
            let mut expected = created.clone();
            match (field, direction) {
                ("NAME", "ASC") => expected.sort(),
                ("NAME", "DESC") => { expected.sort(); expected.reverse(); }
                (_, "DESC") => expected.reverse(),
                _ => {}
            }
            assert_eq!(all, expected, "{field} {direction}");

            // Forward in pages of 3.
            let mut seen = Vec::new();
            let mut after = Value::Null;
            loop {
                let page = app.ok(&app.admin, query, json!({ "first": 3, "after": after, "order": order })).await;
                assert_eq!(page["models"]["totalCount"], 7);
                seen.extend(names(&page));
                if page["models"]["pageInfo"]["hasNextPage"] == false { break; }
                after = page["models"]["pageInfo"]["endCursor"].clone();
            }
            assert_eq!(seen, expected, "forward pages {field} {direction}");

            // Backward in pages of 3.
            let mut seen: Vec<String> = Vec::new();
            let mut before = Value::Null;
            loop {
                let page = app.ok(&app.admin, query, json!({ "last": 3, "before": before, "order": order })).await;
                let mut chunk = names(&page);
                chunk.extend(seen);
                seen = chunk;
                if page["models"]["pageInfo"]["hasPreviousPage"] == false { break; }
                before = page["models"]["pageInfo"]["startCursor"].clone();
            }
            assert_eq!(seen, expected, "backward pages {field} {direction}");
        }
    }

    async fn page_size_defaults_to_50_and_is_capped_at_1000(app) {
        let project = app.default_project().await;
        for i in 0..52 {
            app.create_model(&app.admin, &project, &format!("m{i:02}"), json!({})).await;
        }
        let default = app.ok(&app.admin, "{ models { edges { node { id } } pageInfo { hasNextPage } } }", json!({})).await;
        assert_eq!(default["models"]["edges"].as_array().unwrap().len(), 50);
        assert_eq!(default["models"]["pageInfo"]["hasNextPage"], true);
        let capped = app.ok(&app.admin, "{ models(first: 5000) { edges { node { id } } pageInfo { hasNextPage } } }", json!({})).await;
        assert_eq!(capped["models"]["edges"].as_array().unwrap().len(), 52);
        let error = app.fails(&app.admin, "{ models(first: -1) { totalCount } }", json!({}), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "first");
        let error = app.fails(&app.admin, r#"{ models(after: "garbage") { totalCount } }"#, json!({}), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "after");
    }

    async fn filter_values_come_in_one_round_trip(app) {
        let project = app.default_project().await;
        app.create_model(&app.admin, &project, "a", json!({ "framework": "torch", "capabilities": ["asr", "tts"], "modelFamily": "GENAI", "modelTaskType": "llm" })).await;
        app.create_model(&app.admin, &project, "b", json!({ "framework": "onnx", "capabilities": ["asr"], "modelFamily": "OTHER" })).await;
        app.create_model(&app.admin, &project, "c", json!({ "framework": "torch" })).await;
        let data = app
            .ok(&app.admin, "query($p: ID!) { modelFilterValues(projectId: $p) { frameworks capabilities modelFamilies modelTaskTypes } }", json!({ "p": project }))
            .await;
        assert_eq!(
            data["modelFilterValues"],
            json!({ "frameworks": ["onnx", "torch"], "capabilities": ["asr", "tts"], "modelFamilies": ["GENAI", "OTHER"], "modelTaskTypes": ["llm"] })
        );
    }

    async fn model_quota_is_enforced(app) {
        let project = app.default_project().await;
        let quotas = "mutation($input: UpdateProjectQuotasInput!) { updateProjectQuotas(input: $input) { project { maxModels maxVersionsPerMonth } } }";
        let data = app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxModels": 2 } })).await;
        assert_eq!(data["updateProjectQuotas"]["project"], json!({ "maxModels": 2, "maxVersionsPerMonth": null }));
        let first = app.create_model(&app.admin, &project, "one", json!({})).await;
        app.create_model(&app.admin, &project, "two", json!({})).await;
        let error = app.fails(&app.admin, CREATE, json!({ "input": { "projectId": project, "name": "three" } }), "QUOTA_EXCEEDED").await;
        assert!(error["message"].as_str().unwrap().contains('2'), "the limit is in the message: {error}");
        // Deleting frees a slot; removing the quota lifts it.
        app.ok(&app.admin, DELETE, json!({ "input": { "id": first } })).await;
        app.create_model(&app.admin, &project, "three", json!({})).await;
        app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxModels": null } })).await;
        app.create_model(&app.admin, &project, "four", json!({})).await;
        // A project key cannot raise its own quota.
        let project_admin = app.project_key(&project, "ADMIN").await;
        app.fails(&project_admin, quotas, json!({ "input": { "projectId": project, "maxModels": 100 } }), "FORBIDDEN").await;
        let negative = app.fails(&app.admin, quotas, json!({ "input": { "projectId": project, "maxModels": -1 } }), "BAD_USER_INPUT").await;
        assert_eq!(negative["extensions"]["field"], "maxModels");
    }

    async fn concurrent_creates_of_one_name_make_one_model(app) {
        let project = app.default_project().await;
        let attempts = (0..6).map(|i| {
            let app = &app;
            let project = project.clone();
            // Half ask for the name, half for another name with the name's slug.
            let input = if i % 2 == 0 {
                json!({ "projectId": project, "name": "Twin" })
            } else {
                json!({ "projectId": project, "name": format!("Other {i}"), "slug": "twin" })
            };
            async move { app.gql(&app.admin, CREATE, json!({ "input": input })).await }
        });
        let results = futures::future::join_all(attempts).await;
        let created = results.iter().filter(|r| r.get("errors").is_none()).count();
        assert_eq!(created, 1, "{results:#?}");
        for refused in results.iter().filter(|r| r.get("errors").is_some()) {
            let error = &refused["errors"][0];
            assert_eq!(error["extensions"]["code"], "CONFLICT", "{error}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains("`Twin`") || message.contains("slug `twin`"), "{error}");
        }
        let list = app.ok(&app.admin, "{ models { totalCount } }", json!({})).await;
        assert_eq!(list["models"]["totalCount"], 1);
    }

    async fn concurrent_creates_respect_the_quota(app) {
        let project = app.default_project().await;
        let quotas = "mutation($input: UpdateProjectQuotasInput!) { updateProjectQuotas(input: $input) { project { id } } }";
        app.ok(&app.admin, quotas, json!({ "input": { "projectId": project, "maxModels": 3 } })).await;
        let attempts = (0..8).map(|i| {
            let app = &app;
            let project = project.clone();
            async move {
                app.gql(&app.admin, CREATE, json!({ "input": { "projectId": project, "name": format!("race-{i}") } })).await
            }
        });
        let results = futures::future::join_all(attempts).await;
        let created = results.iter().filter(|r| r.get("errors").is_none()).count();
        assert_eq!(created, 3, "{results:#?}");
        assert!(results.iter().filter(|r| r.get("errors").is_some()).all(|r| r["errors"][0]["extensions"]["code"] == "QUOTA_EXCEEDED"));
    }
}
