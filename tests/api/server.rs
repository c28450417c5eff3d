//! The HTTP surface around the API: GraphiQL, health, readiness, metrics, unknown routes.

use serde_json::{Value, json};

backends! {
    async fn graphiql_health_readiness_and_metrics(app) {
        let page = app.client.get(format!("{}/graphql", app.base)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().to_lowercase().contains("graphiql"));

        let health = app.get("/healthz").await;
        assert_eq!(health.status(), 200);
        assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), 200);
        assert_eq!(ready.json::<Value>().await.unwrap()["database"], "ok");

        app.ok(&app.admin, "{ viewer { role } }", json!({})).await;
        app.fails("", "{ viewer { role } }", json!({}), "UNAUTHENTICATED").await;
        for _ in 0..2 {
            app.ok(&app.admin, "{ models { totalCount } }", json!({})).await;
        }
        let metrics = app.get("/metrics").await;
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        for series in [
            "mr_http_requests_total",
            "mr_http_request_duration_seconds_bucket",
            "mr_db_queries_total",
            "mr_db_pool_connections",
            "mr_graphql_errors_total{code=\"UNAUTHENTICATED\"}",
            "mr_graphql_response_cache_total{result=\"miss\"}",
            "mr_graphql_response_cache_total{result=\"hit\"}",
        ] {
            assert!(text.contains(series), "missing {series} in:\n{text}");
        }
    }

    async fn unknown_routes_answer_the_error_envelope(app) {
        let response = app.get("/v1/nothing-here").await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
}

/// PostgreSQL only: an embedded SQLite file cannot go away under a running process.
mod readiness_fails_when_the_database_is_gone {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = crate::support::TestApp::postgres().await;
        assert_eq!(app.get("/readyz").await.status(), 200);
        app.drop_database().await;
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), 503);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["error"]["code"], "UNAVAILABLE");
        assert_eq!(ready["database"], "unreachable");
    }
}
