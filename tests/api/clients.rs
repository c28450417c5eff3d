//! What the GraphQL clients people use send: the standard introspection queries, GET
//! requests, `Accept` negotiation, batches, automatic persisted queries, CORS preflights from
//! browser apps, `node(id:)` refetches, and the GraphiQL page.

use serde_json::{Value, json};

use crate::support::TestApp;

/// The introspection query of graphql-js 16's `getIntrospectionQuery` (what GraphiQL,
/// graphql-codegen and Apollo's tooling send) with all its options on, and `typeDepth`
/// levels of `ofType` (graphql-js 16 ships 9; graphql-core, under Python's `gql`, 7).
fn introspection_query(type_depth: usize) -> String {
    let mut type_ref = String::from("kind name");
    for _ in 0..type_depth {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    format!(
        r#"query IntrospectionQuery {{
  __schema {{
    description
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{ ...FullType }}
    directives {{
      name description isRepeatable locations
      args(includeDeprecated: true) {{ ...InputValue }}
    }}
  }}
}}
fragment FullType on __Type {{
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) {{
    name description
    args(includeDeprecated: true) {{ ...InputValue }}
    type {{ ...TypeRef }}
    isDeprecated deprecationReason
  }}
  inputFields(includeDeprecated: true) {{ ...InputValue }}
  interfaces {{ ...TypeRef }}
  enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }}
  possibleTypes {{ ...TypeRef }}
}}
fragment InputValue on __InputValue {{
  name description type {{ ...TypeRef }} defaultValue isDeprecated deprecationReason
}}
fragment TypeRef on __Type {{ {type_ref} }}"#
    )
}

async fn raw_get(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/graphql?{query}", app.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn encoded(params: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(params).unwrap()
}

fn sha256(text: &str) -> String {
    crate::support::sha256_hex(text.as_bytes())
}

backends! {
    async fn every_clients_introspection_is_answered(app) {
        // Without a key, as a tool fetching the schema sends it, at every depth clients use.
        for depth in 1..=12 {
            let response = app.gql("", &introspection_query(depth), json!({})).await;
            assert!(response.get("errors").is_none(), "typeDepth {depth}: {response:#}");
            let types = response["data"]["__schema"]["types"].as_array().unwrap();
            assert!(types.iter().any(|t| t["name"] == "Model"), "typeDepth {depth}");
        }
        // Python gql's shape: graphql-core's query without the newer options.
        let gql = introspection_query(7)
            .replace(" isRepeatable", "")
            .replace(" specifiedByURL isOneOf", "")
            .replace("description\n    queryType", "queryType");
        let response = app.gql("", &gql, json!({})).await;
        assert!(response.get("errors").is_none(), "{response:#}");
    }

    async fn limits_still_refuse_abusive_introspection_and_fragments(app) {
        // Lists inside lists inside lists: each level multiplies by the schema's size.
        let nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        let error = app.fails("", nested, json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().contains("introspection"), "{error}");
        // The standard query's own shape, three lists on a path, passes (above); so does one
        // type's fields' types' fields.
        app.ok("", r#"{ __type(name: "Model") { fields { type { fields { name } } } } }"#, json!({})).await;

        // Many introspection roots under aliases: each answers the whole schema.
        let many: String = (0..11).map(|i| format!("a{i}: __schema {{ types {{ name }} }} ")).collect();
        let error = app.fails("", &format!("{{ {many} }}"), json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().contains("introspection"), "{error}");

        // Unused fragments nested through each other: the walk stops, the process stays up.
        let mut chain = String::from("{ __typename }\n");
        let inner = |i: usize| format!("{}...F{} {}", "a { ".repeat(40), i + 1, "} ".repeat(40));
        for i in 0..256 {
            chain.push_str(&format!("fragment F{i} on QueryRoot {{ {} }}\n", inner(i)));
        }
        let error = app.fails("", &chain, json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().contains("deep"), "{error}");
        app.ok("", "{ __typename }", json!({})).await;

        // Twenty fragments each spreading the next twice: a million fields spelled out.
        let mut fragments = String::new();
        for i in 0..20 {
            fragments.push_str(&format!("fragment F{i} on QueryRoot {{ ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        fragments.push_str("fragment F20 on QueryRoot { __typename }\n");
        let started = std::time::Instant::now();
        let error = app.fails("", &format!("{{ ...F0 }}\n{fragments}"), json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().contains("fields"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused without spelling it out");

        // Data depth is still limited, counted through fragments.
        let mut deep = String::from("id");
        for _ in 0..5 {
            deep = format!("model {{ currentVersion {{ {deep} }} }}");
        }
        let query = format!("{{ ...A }} fragment A on QueryRoot {{ models {{ edges {{ node {{ currentVersion {{ {deep} }} }} }} }} }}");
        let error = app.fails(&app.admin, &query, json!({}), "BAD_USER_INPUT").await;
        assert!(error["message"].as_str().unwrap().contains("deep"), "{error}");
    }

    async fn get_runs_queries_and_refuses_mutations(app) {
        let auth = format!("Bearer {}", app.admin);
        let response = raw_get(&app, &encoded(&[("query", "{ viewer { role } }")]), &[("authorization", &auth), ("accept", "application/json")]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");

        // Variables and the operation's name, as Apollo's GET link sends them.
        let project = app.default_project().await;
        let document = "query One($id: ID!) { project(id: $id) { id } } mutation Two { __typename }";
        let variables = json!({ "id": project }).to_string();
        let response = raw_get(&app, &encoded(&[("query", document), ("operationName", "One"), ("variables", &variables)]), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["project"]["id"], project.as_str(), "{body}");

        // A mutation over GET is 405 and changes nothing.
        let create = format!(r#"mutation {{ createModel(input: {{ projectId: "{project}", name: "by-get" }}) {{ model {{ id }} }} }}"#);
        let response = raw_get(&app, &encoded(&[("query", &create)]), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED", "{body}");
        let response = raw_get(&app, &encoded(&[("query", document), ("operationName", "Two")]), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 405);
        // An empty operation name selects the only operation, here a mutation.
        let named = format!("mutation M {}", create.trim_start_matches("mutation "));
        let response = raw_get(&app, &encoded(&[("query", &named), ("operationName", "")]), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["cache-control"], "private, no-store");
        let count = app.ok(&app.admin, "{ models { totalCount } }", json!({})).await;
        assert_eq!(count["models"]["totalCount"], 0);

        // Malformed variables name the parameter.
        let response = raw_get(&app, &encoded(&[("query", "{ viewer { role } }"), ("variables", "{nope")]), &[]).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], "variables");
    }

    async fn the_answer_type_follows_accept(app) {
        let post = |accept: Option<&'static str>| {
            let mut request = app.client.post(format!("{}/graphql", app.base))
                .json(&json!({ "query": "{ __typename }" }));
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            request.send()
        };
        for (accept, expected) in [
            (None, "application/json"),
            (Some("application/json"), "application/json"),
            (Some("*/*"), "application/json"),
            (Some("application/graphql-response+json"), "application/graphql-response+json"),
            (Some("application/graphql-response+json, application/json;q=0.9"), "application/graphql-response+json"),
        ] {
            let response = post(accept).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], expected, "Accept: {accept:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["data"]["__typename"], "QueryRoot");
        }
        let response = post(Some("text/html")).await.unwrap();
        assert_eq!(response.status(), 406);

        // Under graphql-response+json a request that never ran is 400; a field that failed
        // while running is still 200. Under application/json both are 200.
        let send = |query: &'static str, accept: &'static str| app.client.post(format!("{}/graphql", app.base))
            .bearer_auth(&app.admin).header("accept", accept).json(&json!({ "query": query })).send();
        let unknown = r#"{ model(id: "0190a0a0-0000-7000-8000-000000000000") { id } }"#;
        assert_eq!(send("{ nope }", "application/graphql-response+json").await.unwrap().status(), 400);
        assert_eq!(send("{ models { ", "application/graphql-response+json").await.unwrap().status(), 400);
        assert_eq!(send(unknown, "application/graphql-response+json").await.unwrap().status(), 200);
        assert_eq!(send("{ nope }", "application/json").await.unwrap().status(), 200);
    }

    async fn batches_answer_in_order_and_are_bounded(app) {
        let batch = json!([
            { "query": "{ viewer { role } }" },
            { "query": "query($n: String!) { __type(name: $n) { name } }", "variables": { "n": "Model" } },
            { "query": "{ nope }" },
        ]);
        let response = app.client.post(format!("{}/graphql", app.base))
            .bearer_auth(&app.admin).json(&batch).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let answers = body.as_array().expect("an array answers an array");
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0]["data"]["viewer"]["role"], "ADMIN");
        assert_eq!(answers[1]["data"]["__type"]["name"], "Model");
        assert_eq!(answers[2]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "one bad operation fails alone");

        let too_many: Vec<Value> = (0..26).map(|_| json!({ "query": "{ __typename }" })).collect();
        let response = app.client.post(format!("{}/graphql", app.base))
            .json(&too_many).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
        assert!(body["error"]["message"].as_str().unwrap().contains("25"), "{body}");
    }

    async fn automatic_persisted_queries_follow_apollos_protocol(app) {
        let query = "{ viewer { role } }";
        let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(query) } });
        let send = |body: Value| app.client.post(format!("{}/graphql", app.base))
            .bearer_auth(&app.admin).json(&body).send();

        // The hash alone, first: the client is told to send the text.
        let body: Value = send(json!({ "extensions": extensions })).await.unwrap().json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{body}");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
        // Text and hash: answered and kept.
        let body: Value = send(json!({ "query": query, "extensions": extensions })).await.unwrap().json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");
        // The hash alone now runs it, over POST and over GET.
        let body: Value = send(json!({ "extensions": extensions })).await.unwrap().json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");
        let auth = format!("Bearer {}", app.admin);
        let response = raw_get(&app, &encoded(&[("extensions", &extensions.to_string())]), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["role"], "ADMIN", "{body}");

        // A hash that is not the text's is refused and nothing is kept under it.
        let wrong = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256("{ __typename }") } });
        let body: Value = send(json!({ "query": query, "extensions": wrong })).await.unwrap().json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        let body: Value = send(json!({ "extensions": wrong })).await.unwrap().json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{body}");

        // A persisted query passes the same checks as any other.
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(5000), "]".repeat(5000));
        let hashed = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256(&deep) } });
        let body: Value = send(json!({ "query": deep, "extensions": hashed })).await.unwrap().json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        let body: Value = send(json!({ "extensions": hashed })).await.unwrap().json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "a refused text is not kept: {body}");
    }

    async fn failed_fields_null_up_to_their_nearest_nullable_place(app) {
        let unknown = "0190a0a0-0000-7000-8000-000000000000";
        // A non-null root field: `data` itself.
        let response = app.gql(&app.admin, &format!(r#"{{ viewer {{ role }} model(id: "{unknown}") {{ id }} }}"#), json!({})).await;
        assert_eq!(response["errors"][0]["extensions"]["code"], "NOT_FOUND", "{response}");
        assert_eq!(response["data"], Value::Null, "{response}");

        // A failed non-null field nulls its nearest nullable ancestor, which stays in the
        // answer as null: `version(label:)` is nullable, its `artifacts` connection is not.
        // Resolved through an alias and a fragment.
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "nulls", json!({})).await;
        app.create_version(&app.admin, &model, "v1").await;
        let query = format!(r#"{{ viewer {{ role }} m: model(id: "{model}") {{ ...F }} }}
            fragment F on Model {{ id v: version(label: "v1") {{ id artifacts(first: -1) {{ totalCount }} }} }}"#);
        let response = app.gql(&app.admin, &query, json!({})).await;
        assert_eq!(response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{response}");
        assert_eq!(response["data"]["viewer"]["role"], "ADMIN", "{response}");
        assert_eq!(response["data"]["m"]["id"], model.as_str(), "{response}");
        assert!(response["data"]["m"].as_object().unwrap().contains_key("v"), "{response}");
        assert_eq!(response["data"]["m"]["v"], Value::Null, "{response}");

        // The same key selected twice (merged), the failing part in the second selection.
        let query = format!(r#"{{ viewer {{ role }} m: model(id: "{model}") {{ v: version(label: "v1") {{ id }} }}
            m: model(id: "{model}") {{ v: version(label: "v1") {{ artifacts(first: -1) {{ totalCount }} }} }} }}"#);
        let response = app.gql(&app.admin, &query, json!({})).await;
        assert_eq!(response["data"]["viewer"]["role"], "ADMIN", "{response}");
        assert_eq!(response["data"]["m"]["v"], Value::Null, "{response}");
    }

    async fn every_object_with_an_id_is_a_node(app) {
        // A new type with an id that is not a Node fails here: Relay and Apollo refetch by id.
        let types = app.ok("", "{ __schema { types { name kind interfaces { name } fields { name type { kind ofType { name } } } } } }", json!({})).await;
        let mut checked = 0;
        for ty in types["__schema"]["types"].as_array().unwrap() {
            let has_id = ty["fields"].as_array().is_some_and(|fields| fields.iter().any(|f| {
                f["name"] == "id" && f["type"]["kind"] == "NON_NULL" && f["type"]["ofType"]["name"] == "ID"
            }));
            if ty["kind"] != "OBJECT" || !has_id || ty["name"].as_str().unwrap().starts_with("__") {
                continue;
            }
            let interfaces = ty["interfaces"].as_array().unwrap();
            assert!(interfaces.iter().any(|i| i["name"] == "Node"), "{} has an id but is not a Node", ty["name"]);
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} types checked");
    }

    async fn node_refetches_artifacts_sessions_and_packages(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "refetched", json!({})).await;
        let version = app.create_version(&app.admin, &model, "v1").await;
        let bytes = crate::support::bytes_of(1000, 7);
        let artifact = app.upload(&app.admin, &model, Some(&version), "w.bin", &bytes).await;
        let artifact = artifact["id"].as_str().unwrap().to_owned();
        let session = app.open_upload(&app.admin, json!({ "modelId": model, "fileName": "open.bin", "totalSizeBytes": 10 })).await;
        let session = session["id"].as_str().unwrap().to_owned();
        let package = app.ok(&app.admin, "mutation($v: ID!, $a: ID!) { createArtifactPackage(input: { versionId: $v, format: \"raw\", primary: { artifactId: $a, role: \"weights\" } }) { package { id } } }", json!({ "v": version, "a": artifact })).await;
        let package = package["createArtifactPackage"]["package"]["id"].as_str().unwrap().to_owned();

        let query = "query($id: ID!) { node(id: $id) { __typename id ... on Artifact { fileName } ... on UploadSession { status } ... on ArtifactPackage { format } } }";
        for (id, typename, field, value) in [
            (&artifact, "Artifact", "fileName", "w.bin"),
            (&session, "UploadSession", "status", "INITIALIZED"),
            (&package, "ArtifactPackage", "format", "raw"),
        ] {
            let node = app.ok(&app.admin, query, json!({ "id": id })).await;
            assert_eq!(node["node"]["__typename"], typename, "{node}");
            assert_eq!(node["node"]["id"], id.as_str());
            assert_eq!(node["node"][field], value, "{node}");
        }

        // Under the same rules as the direct lookups: another project's key sees none of them.
        let other = app.create_project("elsewhere").await;
        let outsider = app.project_key(&other, "ADMIN").await;
        for id in [&artifact, &session, &package] {
            app.fails(&outsider, query, json!({ "id": id }), "NOT_FOUND").await;
        }
    }

    async fn the_graphiql_page_is_for_browsers(app) {
        let page = raw_get(&app, "", &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]).await;
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = page.text().await.unwrap();
        assert!(html.contains("\"assets\":\"https://unpkg.com\""), "the default asset base");
        assert!(html.contains("Bearer "), "the headers editor starts with the key's header");
        assert!(html.contains("--graphiql-assets-url"), "a failed load names the setting");

        // A client that does not ask for HTML is told how to send a query.
        let response = raw_get(&app, "", &[("accept", "application/json")]).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], "query");
    }
}

async fn cors(postgres: bool) {
    let app = TestApp::configured(postgres, |config| {
        config.graphiql_assets_url = "http://mirror.internal/npm/".into();
        config.cors_origins = vec!["http://localhost:3000".into()];
    })
    .await;
    let preflight = |path: String, origin: &'static str, method: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let id = "0190a0a0-0000-7000-8000-000000000000";
    for (path, method) in [
        ("/graphql".to_owned(), "POST"),
        (format!("/v1/uploads/{id}/chunks/0"), "PUT"),
        (format!("/v1/artifacts/{id}/download"), "GET"),
    ] {
        let response = preflight(path.clone(), "http://localhost:3000", method)
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"], "http://localhost:3000",
            "{path}"
        );
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{path}: {allowed}"
        );
        assert!(
            headers["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains(method)
        );
    }
    // Another origin is not let in.
    let response = preflight("/graphql".into(), "http://evil.example", "POST")
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The real request carries the header too, errors included.
    let response = app
        .client
        .post(format!("{}/graphql", app.base))
        .header("origin", "http://localhost:3000")
        .json(&json!({ "query": "{ viewer { role } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );

    // The configured asset base reaches the page, without its trailing slash.
    let page = raw_get(&app, "", &[("accept", "text/html")]).await;
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("\"assets\":\"http://mirror.internal/npm\"")
    );

    // Unconfigured, a preflight gets no CORS answer.
    let plain = TestApp::configured(postgres, |_| {}).await;
    let response = plain
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", plain.base))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

per_backend! {
    cors_lets_configured_origins_in => cors,
}
