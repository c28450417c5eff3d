//! The response cache: a repeated read is served without executing it, and no answer it serves
//! differs from what execution would answer now, after any write, by any path, on any replica.

use std::net::SocketAddr;

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::support::{TestApp, names};

const PAGE: &str = "{ models(first: 50) { totalCount edges { cursor node { id name description
    versionCount versions(first: 5) { edges { node { version lifecycle } } }
    currentVersion { version } project { slug name organization { name } } } } } }";

/// Statements the server ran for one request, and its `data`.
async fn measured(app: &TestApp, key: &str, query: &str, variables: Value) -> (u64, Value) {
    let before = app.app.db.query_count();
    let data = app.ok(key, query, variables).await;
    (app.app.db.query_count() - before, data)
}

/// The answer to `query`, asked twice: the second time it must come from the cache (fewer
/// statements than executing it) and be the same.
async fn cached(app: &TestApp, key: &str, query: &str) -> Value {
    let (executed, first) = measured(app, key, query, json!({})).await;
    let (served, second) = measured(app, key, query, json!({})).await;
    assert_eq!(
        first, second,
        "a cached answer differs from the executed one"
    );
    assert!(
        served < executed,
        "the repeat ran {served} statements, executing ran {executed}: not served from the cache"
    );
    second
}

fn at(time: chrono::DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn node<'a>(page: &'a Value, name: &str) -> &'a Value {
    &page["models"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {page:#}"))["node"]
}

backends! {
    async fn a_repeated_read_is_served_and_every_write_shows_at_once(app) {
        let project = app.default_project().await;
        let first = app.create_model(&app.admin, &project, "first", json!({})).await;
        app.create_version(&app.admin, &first, "v1").await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(names(&page), vec!["first"]);

        // Writes through the API, each read back at once from a cached page.
        let second = app.create_model(&app.admin, &project, "second", json!({})).await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(names(&page), vec!["second", "first"]);
        app.create_version(&app.admin, &first, "v2").await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["versionCount"], 2);
        app.ok(&app.admin, "mutation($id: ID!) { updateModel(input: { id: $id, description: \"new\" }) { model { id } } }", json!({ "id": first })).await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["description"], "new");
        app.ok(&app.admin, "mutation($id: ID!) { deleteModel(input: { id: $id }) { model { id } } }", json!({ "id": second })).await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(names(&page), vec!["first"]);

        // Writes that no API call makes: a fix by hand in SQL, to each table the page reads.
        app.sql(&format!("UPDATE models SET description = 'by hand' WHERE id = '{first}'")).await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["description"], "by hand");
        app.sql("UPDATE model_versions SET lifecycle = 'DEPRECATED' WHERE version = 'v2'").await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["versions"]["edges"][0]["node"]["lifecycle"], "DEPRECATED");
        app.sql(&format!("UPDATE projects SET name = 'Renamed' WHERE id = '{project}'")).await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["project"]["name"], "Renamed");
        app.sql("UPDATE organizations SET name = 'Org by hand'").await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["project"]["organization"]["name"], "Org by hand");
        app.sql("DELETE FROM model_versions WHERE version = 'v2'").await;
        let page = cached(&app, &app.admin, PAGE).await;
        assert_eq!(node(&page, "first")["versionCount"], 1);
        // PostgreSQL's TRUNCATE fires no row trigger; a statement trigger covers it.
        if app.app.db.backend() == model_registry::db::Backend::Postgres {
            app.sql("TRUNCATE models, model_versions CASCADE").await;
            assert_eq!(names(&cached(&app, &app.admin, PAGE).await), Vec::<String>::new());
        }
    }

    async fn answers_are_per_key_and_the_key_is_checked_first(app) {
        let home = app.default_project().await;
        let other = app.create_project("other").await;
        app.create_model(&app.admin, &home, "home-model", json!({})).await;
        app.create_model(&app.admin, &other, "other-model", json!({})).await;
        let home_key = app.project_key(&home, "VIEWER").await;
        let other_key = app.project_key(&other, "VIEWER").await;
        let query = "{ models { edges { node { name } } } }";
        assert_eq!(names(&cached(&app, &home_key, query).await), vec!["home-model"]);
        assert_eq!(names(&cached(&app, &other_key, query).await), vec!["other-model"]);
        assert_eq!(names(&cached(&app, &app.admin, query).await), vec!["other-model", "home-model"]);

        // Revoking writes no table the cache watches; the key is refused all the same.
        let id = app.ok(&home_key, "{ viewer { key { id } } }", json!({})).await["viewer"]["key"]["id"].clone();
        app.ok(&app.admin, "mutation($key: ID!) { revokeApiKey(input: { id: $key }) { apiKey { id } } }", json!({ "key": id })).await;
        app.fails(&home_key, query, json!({}), "UNAUTHENTICATED").await;
    }

    async fn fields_of_other_tables_are_always_executed(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "m", json!({})).await;
        app.create_version(&app.admin, &model, "v1").await;
        let now = Utc::now();
        let query = format!(
            "{{ model(id: \"{model}\") {{ name telemetry(window: {{ from: \"{}\", to: \"{}\" }}) {{ totals {{ sessionCount }} }} }} }}",
            at(now - Duration::hours(1)),
            at(now + Duration::hours(1)),
        );
        let count = |data: &Value| data["model"]["telemetry"]["totals"]["sessionCount"].clone();
        assert_eq!(count(&app.ok(&app.admin, &query, json!({})).await), 0);
        assert_eq!(count(&app.ok(&app.admin, &query, json!({})).await), 0);
        // Telemetry writes no table the cache watches: the model's telemetry must still be read.
        let event = json!({
            "id": uuid::Uuid::now_v7(), "model": model, "version": "v1", "deviceId": "d1",
            "startedAt": at(now), "latencyMs": 5.0, "success": true,
        });
        let response = app.client.post(format!("{}/v1/telemetry/inference", app.base))
            .bearer_auth(&app.admin)
            .json(&json!([event]))
            .send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(count(&app.ok(&app.admin, &query, json!({})).await), 1);
    }

    async fn a_write_through_one_replica_shows_on_another(app) {
        // A second server on the same database, with its own connections and cache: a replica.
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let replica = format!("http://{}", listener.local_addr().unwrap());
        let served = model_registry::App::open((*app.app.config).clone()).await.unwrap();
        let statements = served.db.clone();
        let server = tokio::spawn(async move {
            model_registry::http::serve(listener, served, std::future::pending()).await.unwrap();
        });
        let project = app.default_project().await;
        app.create_model(&app.admin, &project, "one", json!({})).await;
        let query = "{ models { edges { node { name } } } }";
        let read = |base: String| {
            let admin = app.admin.clone();
            async move { crate::support::graphql_data(&base, &admin, query, json!({})).await }
        };
        // The replica executes once, then serves it from its cache.
        let before = statements.query_count();
        assert_eq!(names(&read(replica.clone()).await), vec!["one"]);
        let executed = statements.query_count() - before;
        let before = statements.query_count();
        assert_eq!(names(&read(replica.clone()).await), vec!["one"]);
        assert!(statements.query_count() - before < executed);
        // Written through the first server, read from the replica.
        app.create_model(&app.admin, &project, "two", json!({})).await;
        assert_eq!(names(&read(replica.clone()).await), vec!["two", "one"]);
        server.abort();
    }
}
