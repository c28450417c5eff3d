//! Bad input is BAD_USER_INPUT naming the field and changes nothing; oversized and abusive
//! requests are refused; nested lists cost a fixed number of statements.

use serde_json::{Value, json};

const CREATE: &str =
    "mutation($input: CreateModelInput!) { createModel(input: $input) { model { id } } }";

async fn model_count(app: &crate::support::TestApp) -> i64 {
    app.ok(
        &app.admin,
        "{ models(filter: { includeArchived: true }) { totalCount } }",
        json!({}),
    )
    .await["models"]["totalCount"]
        .as_i64()
        .unwrap()
}

backends! {
    async fn malformed_input_is_bad_user_input_and_changes_nothing(app) {
        let project = app.default_project().await;
        let cases: Vec<(Value, &str)> = vec![
            (json!({ "projectId": "not-a-uuid", "name": "x" }), "input"),
            (json!({ "projectId": project, "name": "x", "productType": "SPACESHIP" }), "input"),
            (json!({ "projectId": project, "name": 42 }), "input"),
            (json!({ "projectId": project, "name": "" }), "name"),
            (json!({ "projectId": project, "name": "x".repeat(201) }), "name"),
            (json!({ "projectId": project, "name": "x", "description": "d".repeat(10_001) }), "description"),
            (json!({ "projectId": project, "name": "x", "inputSchema": { "type": "banana" } }), "inputSchema"),
            (json!({ "projectId": project, "name": "x", "outputSchema": [1, 2, 3] }), "outputSchema"),
            (json!({ "projectId": project, "name": "x", "servingUrl": "not a url" }), "servingUrl"),
            (json!({ "projectId": project, "name": "x", "slug": "Has Spaces" }), "slug"),
            (json!({ "projectId": project, "name": "x", "tags": [{ "key": "a", "value": "1" }, { "key": "a", "value": "2" }] }), "tags.key"),
            (json!({ "projectId": project, "name": "x", "capabilities": [""] }), "capabilities"),
        ];
        for (input, field) in cases {
            let error = app.fails(&app.admin, CREATE, json!({ "input": input }), "BAD_USER_INPUT").await;
            let named = error["extensions"]["field"].as_str().unwrap_or_default();
            assert!(named.starts_with(field), "expected field {field}, got {error:#}");
        }
        assert_eq!(model_count(&app).await, 0, "no failed mutation left a record");

        // Unknown fields, syntax errors and malformed ids in arguments are the client's too.
        app.fails(&app.admin, "{ models { nope } }", json!({}), "BAD_USER_INPUT").await;
        app.fails(&app.admin, "{ models { ", json!({}), "BAD_USER_INPUT").await;
        app.fails(&app.admin, r#"{ model(id: "123") { id } }"#, json!({}), "BAD_USER_INPUT").await;
        app.fails(&app.admin, r#"{ models(filter: { status: WHATEVER }) { totalCount } }"#, json!({}), "BAD_USER_INPUT").await;
    }

    async fn deep_and_wide_queries_are_refused(app) {
        let mut deep = String::from("id");
        for _ in 0..8 {
            deep = format!("model {{ {deep} currentVersion {{ id }} }}");
        }
        let deep = format!("{{ models {{ edges {{ node {{ currentVersion {{ {deep} }} }} }} }} }}");
        let error = app.fails(&app.admin, &deep, json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().to_lowercase().contains("deep"), "{error}");

        let aliases: String = (0..400).map(|i| format!("a{i}: models(first: 1000) {{ edges {{ node {{ id name }} }} }} ")).collect();
        let error = app.fails(&app.admin, &format!("{{ {aliases} }}"), json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().to_lowercase().contains("complex"), "{error}");
    }

    async fn oversized_bodies_are_413(app) {
        let huge = "x".repeat(2 * 1024 * 1024);
        let response = app
            .client
            .post(format!("{}/graphql", app.base))
            .bearer_auth(&app.admin)
            .header("content-type", "application/json")
            .body(json!({ "query": "{ viewer { role } }", "variables": { "pad": huge } }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["connection"], "close", "the unread body ends the connection");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");

        let response = app.client.post(format!("{}/graphql", app.base)).header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    }

    async fn nested_lists_cost_the_same_statements_at_any_page_size(app) {
        let project = app.default_project().await;
        let other = app.create_project("second").await;
        for i in 0..50 {
            let home = if i % 2 == 0 { &project } else { &other };
            let model = app.create_model(&app.admin, home, &format!("model-{i:02}"), json!({})).await;
            for v in 0..3 {
                app.create_version(&app.admin, &model, &format!("v{v}")).await;
            }
        }
        let query = "query($first: Int, $versions: Int) { models(first: $first) { totalCount edges { node { name versionCount
            versions(first: $versions) { totalCount edges { node { version number } } }
            currentVersion { version } latestPublishedVersion { version } project { slug organization { slug } } } } } }";
        let mut costs = Vec::new();
        for first in [1, 5, 50] {
            let before = app.app.db.query_count();
            let data = app.ok(&app.admin, query, json!({ "first": first, "versions": 5 })).await;
            costs.push(app.app.db.query_count() - before);
            let edges = data["models"]["edges"].as_array().unwrap();
            assert_eq!(edges.len(), first as usize);
            assert!(edges.iter().all(|e| e["node"]["versions"]["edges"].as_array().unwrap().len() == 3));
            assert!(edges.iter().all(|e| e["node"]["currentVersion"]["version"] == "v0"));
        }
        assert_eq!(costs[0], costs[2], "statements for first 1, 5, 50: {costs:?}");
        assert!(costs[2] <= 12, "statements for a page of 50: {costs:?}");
    }
}
