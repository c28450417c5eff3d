//! Artifacts end to end: chunked uploads in every order, verification, dedup, collection,
//! downloads with ranges and validators, signed URLs, direct uploads, packages, publishing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{CHUNK, COMPLETE, bytes_of, sha256_hex};

const SESSION: &str = "query($id: ID!) { uploadSession(id: $id) { status receivedBytes receivedChunks missingChunks failureReason artifact { id } } }";
const MODEL: &str = "query($id: ID!) { model(id: $id) { status artifactCount currentArtifact { id } artifacts { totalCount nodes { id fileName } } } }";

async fn model(app: &crate::support::TestApp, name: &str) -> String {
    let project = app.default_project().await;
    app.create_model(&app.admin, &project, name, json!({}))
        .await
}

backends! {
    async fn chunks_arrive_in_order_out_of_order_and_in_parallel(app) {
        let m = model(&app, "m").await;
        let read = app.ok(&app.admin, MODEL, json!({ "id": m })).await;
        assert_eq!(read["model"]["status"], "PENDING");

        // In order, with the digest announced and the artifact made current.
        let a = bytes_of(5 * CHUNK + 123, 1);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "a.safetensors", "totalSizeBytes": a.len(), "sha256": sha256_hex(&a), "chunkSizeBytes": CHUNK, "isCurrent": true, "metadata": { "dtype": "fp16" } })).await;
        assert_eq!(s["chunkCount"], 6);
        assert_eq!(s["status"], "INITIALIZED");
        assert_eq!(s["missingChunks"], json!([0, 1, 2, 3, 4, 5]));
        let id = s["id"].as_str().unwrap();
        assert_eq!(s["chunkUrlTemplate"], format!("{}/v1/uploads/{id}/chunks/{{index}}", app.base));
        let r = app.put_chunk(&app.admin, id, 0, &a[..CHUNK]).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "UPLOADING");
        assert_eq!(body["receivedChunks"], json!([0]));
        assert_eq!(body["receivedBytes"], CHUNK);
        assert_eq!(body["missingChunks"], json!([1, 2, 3, 4, 5]));
        app.put_all(&app.admin, id, &a, CHUNK).await;
        let artifact = app.complete(&app.admin, id, json!({})).await;
        assert_eq!(artifact["sha256"], sha256_hex(&a));
        assert_eq!(artifact["sizeBytes"], a.len());
        assert_eq!(artifact["status"], "AVAILABLE");
        assert_eq!(artifact["format"], "safetensors");
        assert_eq!(artifact["kind"], "MODEL_BINARY");
        assert_eq!(artifact["storageBackend"], "fs");
        assert!(artifact["storageUri"].as_str().unwrap().ends_with(&sha256_hex(&a)));
        assert_eq!(artifact["model"]["status"], "READY", "a verified artifact makes the model READY");
        let s = app.ok(&app.admin, SESSION, json!({ "id": id })).await;
        assert_eq!(s["uploadSession"]["status"], "COMPLETED");
        assert_eq!(s["uploadSession"]["missingChunks"], json!([]));
        assert_eq!(s["uploadSession"]["artifact"]["id"], artifact["id"]);
        assert_eq!(app.upload_files(), 0, "completed uploads leave no chunks behind");

        // Out of order, digest unknown until the end.
        let b = bytes_of(4 * CHUNK, 2);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "b.bin", "totalSizeBytes": b.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();
        for i in [3usize, 1, 0, 2] {
            let r = app.put_chunk(&app.admin, id, i as i64, &b[i * CHUNK..(i + 1) * CHUNK]).await;
            assert_eq!(r.status(), 200);
        }
        let artifact_b = app.complete(&app.admin, id, json!({})).await;
        assert_eq!(artifact_b["sha256"], sha256_hex(&b));

        // In parallel.
        let c = bytes_of(8 * CHUNK + 7, 3);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "c.bin", "totalSizeBytes": c.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap().to_owned();
        let puts = c.chunks(CHUNK).enumerate().map(|(i, part)| {
            let (app, id) = (&app, id.clone());
            async move { app.put_chunk(&app.admin, &id, i as i64, part).await.status() }
        });
        for status in futures::future::join_all(puts).await {
            assert_eq!(status, 200);
        }
        let artifact_c = app.complete(&app.admin, &id, json!({ "sha256": sha256_hex(&c) })).await;
        assert_eq!(artifact_c["sha256"], sha256_hex(&c));

        for (artifact, bytes) in [(&artifact, &a), (&artifact_b, &b), (&artifact_c, &c)] {
            let r = app.download(&app.admin, artifact["id"].as_str().unwrap(), &[]).await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice(), "the same bytes come back");
        }
        let read = app.ok(&app.admin, MODEL, json!({ "id": m })).await;
        assert_eq!(read["model"]["artifactCount"], 3);
        assert_eq!(read["model"]["artifacts"]["totalCount"], 3);
        assert_eq!(read["model"]["currentArtifact"]["id"], artifact["id"]);
    }

    async fn resent_missing_and_misshapen_chunks(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(3 * CHUNK + 10, 4);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();

        // Wrong lengths, out-of-range indexes and oversize bodies are refused and not recorded.
        let r = app.put_chunk(&app.admin, id, 0, &bytes[..CHUNK - 1]).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
        assert_eq!(body["error"]["field"], "body");
        let r = app.put_chunk(&app.admin, id, 3, &bytes[..11]).await;
        assert_eq!(r.status(), 400, "the last chunk is exactly the remainder");
        let r = app.put_chunk(&app.admin, id, 4, &bytes[..10]).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "index");
        let r = app.put_chunk(&app.admin, id, -1, &bytes[..10]).await;
        assert_eq!(r.status(), 400);
        let r = app.put_chunk(&app.admin, id, 0, &bytes_of(CHUNK + 1, 9)).await;
        assert_eq!(r.status(), 413);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "PAYLOAD_TOO_LARGE");

        // A Content-Digest that does not match is refused.
        let r = app.client.put(format!("{}/v1/uploads/{id}/chunks/1", app.base))
            .bearer_auth(&app.admin)
            .header("Content-Digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:")
            .body(bytes[CHUNK..2 * CHUNK].to_vec())
            .send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "CHECKSUM_MISMATCH");
        let read = app.ok(&app.admin, SESSION, json!({ "id": id })).await;
        assert_eq!(read["uploadSession"]["receivedChunks"], json!([]));

        // Garbage first, then the right bytes: the re-sent chunk replaces the first.
        assert_eq!(app.put_chunk(&app.admin, id, 1, &bytes_of(CHUNK, 99)).await.status(), 200);
        assert_eq!(app.put_chunk(&app.admin, id, 0, &bytes[..CHUNK]).await.status(), 200);
        assert_eq!(app.put_chunk(&app.admin, id, 3, &bytes[3 * CHUNK..]).await.status(), 200);
        let error = app.fails(&app.admin, crate::support::COMPLETE, json!({ "i": { "id": id } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("missing: 2"), "{error}");
        let read = app.ok(&app.admin, SESSION, json!({ "id": id })).await;
        assert_eq!(read["uploadSession"]["missingChunks"], json!([2]));
        assert_eq!(read["uploadSession"]["receivedBytes"], 2 * CHUNK + 10);
        use base64::Engine;
        let digest = base64::engine::general_purpose::STANDARD.encode(hex::decode(sha256_hex(&bytes[CHUNK..2 * CHUNK])).unwrap());
        let r = app.client.put(format!("{}/v1/uploads/{id}/chunks/1", app.base))
            .bearer_auth(&app.admin)
            .header("Content-Digest", format!("sha-256=:{digest}:"))
            .body(bytes[CHUNK..2 * CHUNK].to_vec())
            .send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(app.put_chunk(&app.admin, id, 2, &bytes[2 * CHUNK..3 * CHUNK]).await.status(), 200);
        let artifact = app.complete(&app.admin, id, json!({ "sha256": sha256_hex(&bytes) })).await;
        assert_eq!(artifact["sha256"], sha256_hex(&bytes));

        // A completed session takes no more chunks: 409.
        let r = app.put_chunk(&app.admin, id, 0, &bytes[..CHUNK]).await;
        assert_eq!(r.status(), 409);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "CONFLICT");
        // Unknown sessions: 404 in the envelope.
        let r = app.put_chunk(&app.admin, "0190b5a0-0000-7000-8000-000000000000", 0, b"x").await;
        assert_eq!(r.status(), 404);
        let r = app.put_chunk(&app.admin, "not-an-id", 0, b"x").await;
        assert_eq!(r.status(), 404);
        assert_eq!(app.put_chunk("", id, 0, b"x").await.status(), 401);
    }

    async fn a_digest_mismatch_fails_the_session_and_leaves_nothing(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(2 * CHUNK, 5);
        let wrong = "ab".repeat(32);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK, "sha256": wrong })).await;
        let id = s["id"].as_str().unwrap();
        app.put_all(&app.admin, id, &bytes, CHUNK).await;
        let error = app.fails(&app.admin, crate::support::COMPLETE, json!({ "i": { "id": id } }), "CHECKSUM_MISMATCH").await;
        assert_eq!(error["extensions"]["expectedSha256"], wrong);
        assert_eq!(error["extensions"]["actualSha256"], sha256_hex(&bytes));
        let read = app.ok(&app.admin, SESSION, json!({ "id": id })).await;
        assert_eq!(read["uploadSession"]["status"], "FAILED");
        assert!(read["uploadSession"]["failureReason"].as_str().unwrap().contains(&sha256_hex(&bytes)));
        let model = app.ok(&app.admin, MODEL, json!({ "id": m })).await;
        assert_eq!(model["model"]["artifactCount"], 0);
        assert_eq!(model["model"]["status"], "PENDING");
        assert!(app.blob_files().is_empty(), "no stray blob: {:?}", app.blob_files());
        assert_eq!(app.upload_files(), 0, "no stray chunks");
        app.fails(&app.admin, crate::support::COMPLETE, json!({ "i": { "id": id } }), "PRECONDITION_FAILED").await;

        // A digest given at completion that contradicts the announced one is bad input.
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": 1, "sha256": sha256_hex(b"x") })).await;
        let error = app.fails(&app.admin, crate::support::COMPLETE, json!({ "i": { "id": s["id"], "sha256": sha256_hex(b"y") } }), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "sha256");
    }

    async fn expired_sessions_answer_410_and_lose_their_chunks(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(2 * CHUNK, 6);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK, "expiresInSeconds": 60 })).await;
        let id = s["id"].as_str().unwrap();
        assert_eq!(app.put_chunk(&app.admin, id, 0, &bytes[..CHUNK]).await.status(), 200);
        assert_eq!(app.upload_files(), 1);
        app.sql(&format!("UPDATE upload_sessions SET expires_at = '2020-01-01 00:00:00' WHERE id = '{id}'")).await;
        let r = app.put_chunk(&app.admin, id, 1, &bytes[CHUNK..]).await;
        assert_eq!(r.status(), 410);
        let read = app.ok(&app.admin, SESSION, json!({ "id": id })).await;
        assert_eq!(read["uploadSession"]["status"], "EXPIRED");
        app.fails(&app.admin, crate::support::COMPLETE, json!({ "i": { "id": id } }), "PRECONDITION_FAILED").await;
        assert_eq!(model_registry::jobs::expire_sessions(&app.app).await.unwrap(), 1);
        assert_eq!(app.upload_files(), 0, "the expiry job removed the chunks");
        assert_eq!(model_registry::jobs::expire_sessions(&app.app).await.unwrap(), 0, "once");
        let listed = app.ok(&app.admin, "query($f: UploadSessionFilter!) { uploadSessions(filter: $f) { nodes { id status } } }", json!({ "f": { "modelId": m, "status": ["EXPIRED"] } })).await;
        assert_eq!(listed["uploadSessions"]["nodes"], json!([{ "id": id, "status": "EXPIRED" }]));
        app.fails(&app.admin, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }", json!({ "i": { "modelId": m, "fileName": "f", "totalSizeBytes": 1, "expiresInSeconds": 5 } }), "BAD_USER_INPUT").await;
    }

    async fn another_projects_uploads_and_artifacts_are_not_found(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(CHUNK, 7);
        let artifact = app.upload(&app.admin, &m, None, "f.bin", &bytes).await;
        let artifact_id = artifact["id"].as_str().unwrap();
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "g.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();
        let other = app.create_project("other").await;
        let stranger = app.project_key(&other, "ADMIN").await;
        app.fails(&stranger, SESSION, json!({ "id": id }), "NOT_FOUND").await;
        let r = app.put_chunk(&stranger, id, 0, &bytes).await;
        assert_eq!(r.status(), 404);
        app.fails(&stranger, crate::support::COMPLETE, json!({ "i": { "id": id } }), "NOT_FOUND").await;
        app.fails(&stranger, "query($id: ID!) { artifact(id: $id) { id } }", json!({ "id": artifact_id }), "NOT_FOUND").await;
        assert_eq!(app.download(&stranger, artifact_id, &[]).await.status(), 404);
        app.fails(&stranger, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }", json!({ "i": { "modelId": m, "fileName": "f", "totalSizeBytes": 1 } }), "NOT_FOUND").await;
        // A viewer of the project reads and downloads but does not upload.
        let project = app.default_project().await;
        let viewer = app.project_key(&project, "VIEWER").await;
        assert_eq!(app.put_chunk(&viewer, id, 0, &bytes).await.status(), 403);
        let r = app.download(&viewer, artifact_id, &[]).await;
        assert_eq!(r.status(), 200);
        app.fails(&viewer, "mutation($i: ArtifactIdInput!) { deleteArtifact(input: $i) { artifact { id } } }", json!({ "i": { "id": artifact_id } }), "FORBIDDEN").await;
    }

    async fn a_versions_file_names_are_unique_unless_replaced(app) {
        let project = app.default_project().await;
        let model = app.create_model(&app.admin, &project, "named", json!({})).await;
        let version = app.create_version(&app.admin, &model, "v1").await;
        let first = bytes_of(3000, 1);
        let old = app.upload(&app.admin, &model, Some(&version), "w.bin", &first).await;
        let open = "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }";
        let second = bytes_of(2000, 2);
        let input = json!({ "modelId": model, "versionId": version, "fileName": "w.bin", "totalSizeBytes": second.len() });

        // Refused before any byte is sent, naming the file.
        let error = app.fails(&app.admin, open, json!({ "i": input }), "CONFLICT").await;
        assert!(error["message"].as_str().unwrap().contains("`w.bin`"), "{error}");
        // Another version, or no version, may use the name.
        let v2 = app.create_version(&app.admin, &model, "v2").await;
        app.upload(&app.admin, &model, Some(&v2), "w.bin", &second).await;

        // Two sessions opened before either completed: the second to complete is refused.
        let v3 = app.create_version(&app.admin, &model, "v3").await;
        let mut racing = input.clone();
        racing["versionId"] = json!(v3);
        let a = app.ok(&app.admin, open, json!({ "i": racing })).await["createUploadSession"]["uploadSession"]["id"].as_str().unwrap().to_owned();
        let b = app.ok(&app.admin, open, json!({ "i": racing })).await["createUploadSession"]["uploadSession"]["id"].as_str().unwrap().to_owned();
        app.put_all(&app.admin, &a, &second, CHUNK).await;
        app.put_all(&app.admin, &b, &second, CHUNK).await;
        app.complete(&app.admin, &a, json!({})).await;
        let error = app.fails(&app.admin, COMPLETE, json!({ "i": { "id": b } }), "CONFLICT").await;
        assert!(error["message"].as_str().unwrap().contains("`w.bin`"), "{error}");

        // With replace, the new file takes the name and the old one is retired with it.
        let mut replacing = input.clone();
        replacing["replace"] = json!(true);
        let session = app.ok(&app.admin, open, json!({ "i": replacing })).await["createUploadSession"]["uploadSession"]["id"].as_str().unwrap().to_owned();
        app.put_all(&app.admin, &session, &second, CHUNK).await;
        let new = app.complete(&app.admin, &session, json!({})).await;
        let files = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { artifacts { edges { node { id fileName sha256 } } } } }", json!({ "id": version })).await;
        let files = files["modelVersion"]["artifacts"]["edges"].as_array().unwrap().clone();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0]["node"]["id"], new["id"]);
        assert_eq!(files[0]["node"]["sha256"], sha256_hex(&second).as_str());
        let gone = app.gql(&app.admin, "query($id: ID!) { artifact(id: $id) { id } }", json!({ "id": old["id"] })).await;
        assert_eq!(gone["errors"][0]["extensions"]["code"], "NOT_FOUND", "{gone}");

        // A published version's files stay fixed, replace or not.
        app.mark_published(&version).await;
        app.fails(&app.admin, open, json!({ "i": replacing }), "PRECONDITION_FAILED").await;
    }

    async fn identical_bytes_are_stored_once_and_collected_when_unnamed(app) {
        let m1 = model(&app, "one").await;
        let other = app.create_project("other").await;
        let m2 = app.create_model(&app.admin, &other, "two", json!({})).await;
        let bytes = bytes_of(3 * CHUNK, 8);
        let a1 = app.upload(&app.admin, &m1, None, "w.bin", &bytes).await;
        let a2 = app.upload(&app.admin, &m2, None, "copy.bin", &bytes).await;
        assert_eq!(a1["sha256"], a2["sha256"]);
        assert_eq!(a1["storageUri"], a2["storageUri"]);
        assert_eq!(app.blob_files(), vec![sha256_hex(&bytes)], "one blob on disk");

        let delete = "mutation($i: ArtifactIdInput!) { deleteArtifact(input: $i) { artifact { id status } } }";
        let gone = app.ok(&app.admin, delete, json!({ "i": { "id": a1["id"] } })).await;
        assert_eq!(gone["deleteArtifact"]["artifact"]["status"], "DELETED");
        assert_eq!(app.download(&app.admin, a1["id"].as_str().unwrap(), &[]).await.status(), 404);
        let read = app.ok(&app.admin, MODEL, json!({ "id": m1 })).await;
        assert_eq!(read["model"]["artifactCount"], 0, "gone from lists");
        let retention = Duration::ZERO;
        assert_eq!(model_registry::jobs::collect_blobs(&app.app, retention).await.unwrap(), 0);
        assert_eq!(app.blob_files().len(), 1, "the other artifact still names the bytes");
        let r = app.download(&app.admin, a2["id"].as_str().unwrap(), &[]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        app.ok(&app.admin, delete, json!({ "i": { "id": a2["id"] } })).await;
        // Inside the retention window nothing goes.
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(model_registry::jobs::collect_blobs(&app.app, week).await.unwrap(), 0);
        assert_eq!(app.blob_files().len(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(model_registry::jobs::collect_blobs(&app.app, retention).await.unwrap(), 1);
        assert!(app.blob_files().is_empty());
        // What a killed process leaves in the fs staging folder goes once it is old.
        let leftover = app.data_dir().join(".staging/interrupted-write");
        std::fs::write(&leftover, b"partial").unwrap();
        assert_eq!(app.app.storage.sweep_staging(Duration::from_secs(3600)).await.unwrap(), 0);
        assert!(leftover.exists(), "a recent write may still be running");
        assert_eq!(app.app.storage.sweep_staging(Duration::ZERO).await.unwrap(), 1);
        assert!(!leftover.exists());
        // The same bytes uploaded again are stored again.
        let a3 = app.upload(&app.admin, &m1, None, "w.bin", &bytes).await;
        let r = app.download(&app.admin, a3["id"].as_str().unwrap(), &[]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }

    async fn downloads_serve_ranges_and_validators(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(CHUNK + 100, 10);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "mödel \"v1\".onnx", "contentType": "application/onnx", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();
        app.put_all(&app.admin, id, &bytes, CHUNK).await;
        let artifact = app.complete(&app.admin, id, json!({})).await;
        let aid = artifact["id"].as_str().unwrap();
        let etag = format!("\"{}\"", sha256_hex(&bytes));

        let r = app.download(&app.admin, aid, &[]).await;
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["etag"], etag.as_str());
        assert_eq!(h["content-length"], bytes.len().to_string().as_str());
        assert_eq!(h["content-type"], "application/onnx");
        assert_eq!(h["accept-ranges"], "bytes");
        assert_eq!(h["content-disposition"], "attachment; filename=\"m_del _v1_.onnx\"; filename*=UTF-8''m%C3%B6del%20%22v1%22.onnx");

        let r = app.download(&app.admin, aid, &[("Range", "bytes=10-19")]).await;
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["content-range"], format!("bytes 10-19/{}", bytes.len()).as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[10..20]);
        let r = app.download(&app.admin, aid, &[("Range", "bytes=-5")]).await;
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[bytes.len() - 5..]);
        let r = app.download(&app.admin, aid, &[("Range", &format!("bytes={}-", CHUNK - 1))]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[CHUNK - 1..], "a range across the chunk boundary");
        let r = app.download(&app.admin, aid, &[("Range", "bytes=999999-")]).await;
        assert_eq!(r.status(), 416);
        assert_eq!(r.headers()["content-range"], format!("bytes */{}", bytes.len()).as_str());
        let r = app.download(&app.admin, aid, &[("If-None-Match", &etag)]).await;
        assert_eq!(r.status(), 304);
        assert!(r.bytes().await.unwrap().is_empty());
        let r = app.download(&app.admin, aid, &[("If-None-Match", "\"other\"")]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.download("", aid, &[]).await.status(), 401);
    }

    async fn signed_urls_work_without_a_key_until_they_expire(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(1000, 11);
        let artifact = app.upload(&app.admin, &m, None, "f.bin", &bytes).await;
        let aid = artifact["id"].as_str().unwrap();
        let data = app.ok(&app.admin, "query($id: ID!) { artifact(id: $id) { downloadUrl(expiresInSeconds: 60) { url expiresAt } } }", json!({ "id": aid })).await;
        let url = data["artifact"]["downloadUrl"]["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&app.base), "{url}");
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // Tampered: another artifact's path, a changed expiry, a changed signature.
        let other = app.upload(&app.admin, &m, None, "g.bin", &bytes_of(10, 12)).await;
        let swapped = url.replace(aid, other["id"].as_str().unwrap());
        assert_eq!(app.client.get(&swapped).send().await.unwrap().status(), 403);
        let (base, query) = url.split_once('?').unwrap();
        let expires: i64 = query.split('&').find_map(|p| p.strip_prefix("expires=")).unwrap().parse().unwrap();
        let later = url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 3600));
        assert_eq!(app.client.get(&later).send().await.unwrap().status(), 403);
        let mut forged = url.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        let r = app.client.get(&forged).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "FORBIDDEN");
        // Expired: signed by this server, but for a moment already past.
        let path = format!("/v1/artifacts/{aid}/download");
        let past = chrono::Utc::now().timestamp() - 1;
        let key = query.split('&').find_map(|p| p.strip_prefix("key=")).unwrap().parse().unwrap();
        let expired = format!("{}?{}", base, app.app.signer.sign("GET", &path, past, key));
        assert_eq!(app.client.get(&expired).send().await.unwrap().status(), 403);

        let v = app.create_version(&app.admin, &m, "v1").await;
        app.upload(&app.admin, &m, Some(&v), "w.bin", &bytes).await;
        let urls = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { downloadUrls { url artifact { fileName } } } }", json!({ "id": v })).await;
        let list = urls["modelVersion"]["downloadUrls"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        let r = app.client.get(list[0]["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
        app.fails(&app.admin, "query($id: ID!) { artifact(id: $id) { downloadUrl(expiresInSeconds: 0) { url } } }", json!({ "id": aid }), "BAD_USER_INPUT").await;
    }

    async fn direct_uploads_are_verified_like_chunked_ones(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(3 * CHUNK + 1, 13);
        let create = "mutation($i: CreateUploadSessionInput!) { createDirectUpload(input: $i) { uploadUrl method headers { name value } uploadSession { id method status chunkUrlTemplate } } }";
        let data = app.ok(&app.admin, create, json!({ "i": { "modelId": m, "fileName": "big.gguf", "totalSizeBytes": bytes.len(), "sha256": sha256_hex(&bytes) } })).await;
        let direct = &data["createDirectUpload"];
        assert_eq!(direct["method"], "PUT");
        assert_eq!(direct["uploadSession"]["method"], "DIRECT");
        assert!(direct["uploadSession"]["chunkUrlTemplate"].is_null());
        let url = direct["uploadUrl"].as_str().unwrap();
        let id = direct["uploadSession"]["id"].as_str().unwrap();
        let confirm = "mutation($i: CompleteUploadSessionInput!) { confirmDirectUpload(input: $i) { artifact { id sha256 format } } }";
        app.fails(&app.admin, confirm, json!({ "i": { "id": id } }), "PRECONDITION_FAILED").await;
        let tampered = url.replace("signature=", "signature=00");
        assert_eq!(app.client.put(&tampered).body(bytes.clone()).send().await.unwrap().status(), 403);
        let too_big = [bytes.as_slice(), b"extra"].concat();
        assert_eq!(app.client.put(url).body(too_big).send().await.unwrap().status(), 413);
        let r = app.client.put(url).body(bytes.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let done = app.ok(&app.admin, confirm, json!({ "i": { "id": id } })).await;
        let artifact = &done["confirmDirectUpload"]["artifact"];
        assert_eq!(artifact["sha256"], sha256_hex(&bytes));
        assert_eq!(artifact["format"], "gguf");
        let r = app.download(&app.admin, artifact["id"].as_str().unwrap(), &[]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
        assert_eq!(app.upload_files(), 0);

        // A direct upload whose object hashes otherwise fails like a chunked one.
        let data = app.ok(&app.admin, create, json!({ "i": { "modelId": m, "fileName": "x.bin", "totalSizeBytes": 3, "sha256": sha256_hex(b"abc") } })).await;
        let url = data["createDirectUpload"]["uploadUrl"].as_str().unwrap();
        let id = data["createDirectUpload"]["uploadSession"]["id"].as_str().unwrap();
        assert_eq!(app.client.put(url).body("abd").send().await.unwrap().status(), 200);
        app.fails(&app.admin, confirm, json!({ "i": { "id": id } }), "CHECKSUM_MISMATCH").await;
    }

    async fn concurrent_completes_make_one_artifact(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(6 * CHUNK, 14);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();
        app.put_all(&app.admin, id, &bytes, CHUNK).await;
        let (a, b) = tokio::join!(
            app.complete(&app.admin, id, json!({})),
            app.complete(&app.admin, id, json!({}))
        );
        assert_eq!(a["id"], b["id"], "both completes answer the one artifact");
        let read = app.ok(&app.admin, MODEL, json!({ "id": m })).await;
        assert_eq!(read["model"]["artifactCount"], 1);
        let again = app.complete(&app.admin, id, json!({})).await;
        assert_eq!(again["id"], a["id"], "completing again is idempotent");
    }

    async fn publishing_needs_a_verified_artifact_and_freezes_them(app) {
        let m = model(&app, "m").await;
        let v = app.create_version(&app.admin, &m, "v1").await;
        let publish = "mutation($i: ModelVersionIdInput!) { publishModelVersion(input: $i) { modelVersion { lifecycle } } }";
        let error = app.fails(&app.admin, publish, json!({ "i": { "id": v } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("verified SHA-256"));
        let bytes = bytes_of(100, 15);
        let weights = app.upload(&app.admin, &m, Some(&v), "model.safetensors", &bytes).await;
        assert_eq!(weights["version"]["id"], v);
        let tokenizer = app.upload(&app.admin, &m, Some(&v), "tokenizer.json", b"{}").await;
        let config = app.upload(&app.admin, &m, Some(&v), "config.json", b"{\"a\":1}").await;

        let package = app.ok(&app.admin, "mutation($i: CreateArtifactPackageInput!) { createArtifactPackage(input: $i) { package { id format primary { id } members { id packageRole } } } }", json!({ "i": {
            "versionId": v, "format": "safetensors",
            "primary": { "artifactId": weights["id"], "role": "weights" },
            "sidecars": [{ "artifactId": tokenizer["id"], "role": "tokenizer" }, { "artifactId": config["id"], "role": "config" }]
        } })).await;
        let p = &package["createArtifactPackage"]["package"];
        assert_eq!(p["primary"]["id"], weights["id"]);
        let roles: Vec<&str> = p["members"].as_array().unwrap().iter().map(|m| m["packageRole"].as_str().unwrap()).collect();
        assert_eq!(roles, ["weights", "config", "tokenizer"], "primary first");
        let listed = app.ok(&app.admin, "query($id: ID!) { modelVersion(id: $id) { packages { id } artifacts { totalCount } } artifact(id: $a) { package { format } } }".replace("query($id: ID!)", "query($id: ID!, $a: ID!)").as_str(), json!({ "id": v, "a": tokenizer["id"] })).await;
        assert_eq!(listed["modelVersion"]["packages"][0]["id"], p["id"]);
        assert_eq!(listed["modelVersion"]["artifacts"]["totalCount"], 3);
        assert_eq!(listed["artifact"]["package"]["format"], "safetensors");
        app.fails(&app.admin, "mutation($i: CreateArtifactPackageInput!) { createArtifactPackage(input: $i) { package { id } } }", json!({ "i": {
            "versionId": v, "format": "x", "primary": { "artifactId": weights["id"], "role": "weights" } } }), "CONFLICT").await;

        let done = app.ok(&app.admin, publish, json!({ "i": { "id": v } })).await;
        assert_eq!(done["publishModelVersion"]["modelVersion"]["lifecycle"], "PUBLISHED");
        let error = app.fails(&app.admin, "mutation($i: ArtifactIdInput!) { deleteArtifact(input: $i) { artifact { id } } }", json!({ "i": { "id": weights["id"] } }), "PRECONDITION_FAILED").await;
        assert!(error["message"].as_str().unwrap().contains("PUBLISHED"));
        app.fails(&app.admin, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }", json!({ "i": { "modelId": m, "versionId": v, "fileName": "f", "totalSizeBytes": 1 } }), "PRECONDITION_FAILED").await;
        app.fails(&app.admin, "mutation($i: UpdateArtifactInput!) { updateArtifact(input: $i) { artifact { id } } }", json!({ "i": { "id": weights["id"], "metadata": { "a": 1 } } }), "PRECONDITION_FAILED").await;
    }

    async fn the_current_artifact_moves(app) {
        let m = model(&app, "m").await;
        let a = app.upload(&app.admin, &m, None, "a.bin", b"a").await;
        let b = app.upload(&app.admin, &m, None, "b.bin", b"b").await;
        let empty = app.upload(&app.admin, &m, None, "empty.txt", b"").await;
        assert_eq!(empty["sha256"], sha256_hex(b""), "an empty file is an artifact too");
        let r = app.download(&app.admin, empty["id"].as_str().unwrap(), &[]).await;
        assert_eq!((r.status().as_u16(), r.bytes().await.unwrap().len()), (200, 0));
        let update = "mutation($i: UpdateArtifactInput!) { updateArtifact(input: $i) { artifact { id isCurrent versionLabel metadata } } }";
        let data = app.ok(&app.admin, update, json!({ "i": { "id": a["id"], "isCurrent": true, "versionLabel": "fp16", "metadata": { "q": 4 } } })).await;
        assert_eq!(data["updateArtifact"]["artifact"], json!({ "id": a["id"], "isCurrent": true, "versionLabel": "fp16", "metadata": { "q": 4 } }));
        app.ok(&app.admin, update, json!({ "i": { "id": b["id"], "isCurrent": true } })).await;
        let read = app.ok(&app.admin, "query($a: ID!, $m: ID!) { artifact(id: $a) { isCurrent } model(id: $m) { currentArtifact { id } } }", json!({ "a": a["id"], "m": m })).await;
        assert_eq!(read["artifact"]["isCurrent"], false);
        assert_eq!(read["model"]["currentArtifact"]["id"], b["id"]);
        app.fails(&app.admin, update, json!({ "i": { "id": a["id"], "metadata": [1] } }), "BAD_USER_INPUT").await;
        app.fails(&app.admin, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }", json!({ "i": { "modelId": m, "fileName": "../etc/passwd", "totalSizeBytes": 1 } }), "BAD_USER_INPUT").await;
        let error = app.fails(&app.admin, "mutation($i: CreateUploadSessionInput!) { createUploadSession(input: $i) { uploadSession { id } } }", json!({ "i": { "modelId": m, "fileName": "f", "totalSizeBytes": "12345678901234" } }), "BAD_USER_INPUT").await;
        assert_eq!(error["extensions"]["field"], "totalSizeBytes");
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "big", "totalSizeBytes": 5_000_000_000_i64 })).await;
        assert_eq!(s["chunkSizeBytes"], 16 * 1024 * 1024, "sizes past 2^31 fit the 64-bit scalar");
        assert_eq!(s["chunkCount"], 299);
    }

    async fn aborted_sessions_are_discarded(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(2 * CHUNK, 16);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();
        app.put_chunk(&app.admin, id, 0, &bytes[..CHUNK]).await;
        let abort = "mutation($i: UploadSessionIdInput!) { abortUploadSession(input: $i) { uploadSession { status failureReason } } }";
        let data = app.ok(&app.admin, abort, json!({ "i": { "id": id } })).await;
        assert_eq!(data["abortUploadSession"]["uploadSession"], json!({ "status": "FAILED", "failureReason": "aborted" }));
        assert_eq!(app.upload_files(), 0);
        assert_eq!(app.put_chunk(&app.admin, id, 1, &bytes[CHUNK..]).await.status(), 409);
        app.fails(&app.admin, abort, json!({ "i": { "id": id } }), "PRECONDITION_FAILED").await;
    }

    async fn artifact_and_session_lists_page_in_sql(app) {
        let m = model(&app, "m").await;
        for i in 0..5 {
            app.upload(&app.admin, &m, None, &format!("f{i}.bin"), &bytes_of(10, i)).await;
        }
        let page = "query($m: ID!, $after: String) { model(id: $m) { artifacts(first: 2, after: $after) { totalCount edges { node { fileName } } pageInfo { hasNextPage endCursor } } } }";
        let (mut names, mut after) = (Vec::new(), Value::Null);
        loop {
            let data = app.ok(&app.admin, page, json!({ "m": m, "after": after })).await;
            let list = &data["model"]["artifacts"];
            assert_eq!(list["totalCount"], 5);
            for edge in list["edges"].as_array().unwrap() {
                names.push(edge["node"]["fileName"].as_str().unwrap().to_owned());
            }
            if list["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = list["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(names, ["f4.bin", "f3.bin", "f2.bin", "f1.bin", "f0.bin"], "newest first, each once");
        let last = app.ok(&app.admin, "query($m: ID!) { model(id: $m) { artifacts(last: 2) { edges { node { fileName } } pageInfo { hasPreviousPage } } } }", json!({ "m": m })).await;
        assert_eq!(last["model"]["artifacts"]["edges"], json!([{ "node": { "fileName": "f1.bin" } }, { "node": { "fileName": "f0.bin" } }]));
        assert_eq!(last["model"]["artifacts"]["pageInfo"]["hasPreviousPage"], true);

        // Sessions: the status filter is what clients see, an overdue open session is EXPIRED.
        let mut ids = Vec::new();
        for i in 0..3 {
            let session = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": format!("s{i}.bin"), "totalSizeBytes": 10 })).await;
            ids.push(session["id"].as_str().unwrap().to_owned());
        }
        app.sql(&format!("UPDATE upload_sessions SET expires_at = '2020-01-01 00:00:00' WHERE id = '{}'", ids[0])).await;
        let sessions = "query($m: ID!, $s: [UploadStatus!], $after: String) { uploadSessions(filter: { modelId: $m, status: $s }, first: 1, after: $after) { totalCount edges { node { id status } } pageInfo { hasNextPage endCursor } } }";
        let expired = app.ok(&app.admin, sessions, json!({ "m": m, "s": ["EXPIRED"] })).await;
        assert_eq!(expired["uploadSessions"]["totalCount"], 1);
        assert_eq!(expired["uploadSessions"]["edges"][0]["node"]["id"], ids[0].as_str());
        let open = app.ok(&app.admin, sessions, json!({ "m": m, "s": ["INITIALIZED"] })).await;
        assert_eq!(open["uploadSessions"]["totalCount"], 2);
        let (mut seen, mut after) = (Vec::new(), Value::Null);
        loop {
            let data = app.ok(&app.admin, sessions, json!({ "m": m, "after": after })).await;
            let list = &data["uploadSessions"];
            for edge in list["edges"].as_array().unwrap() {
                seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
            }
            if list["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = list["pageInfo"]["endCursor"].clone();
        }
        // The five completed uploads' sessions and the three opened here, newest first.
        assert_eq!(seen.len(), 8);
        assert_eq!(&seen[..3], [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    }

    async fn chunks_are_written_in_place_and_published_without_a_copy(app) {
        use std::os::unix::fs::MetadataExt;
        let m = model(&app, "m").await;
        let bytes = bytes_of(3 * CHUNK - 7, 21);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK })).await;
        let id = s["id"].as_str().unwrap();
        let parts: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
        for index in [2, 0, 1] {
            let r = app.put_chunk(&app.admin, id, index as i64, parts[index]).await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
        let staged = app.data_dir().join(format!("uploads/{id}/data"));
        assert_eq!(app.upload_files(), 1, "one staging file, whatever the chunk count");
        assert_eq!(std::fs::read(&staged).unwrap(), bytes, "each chunk at its offset");
        let inode = std::fs::metadata(&staged).unwrap().ino();
        // No digest announced: completion finds it, and the file it read is the blob.
        let artifact = app.complete(&app.admin, id, json!({})).await;
        let digest = sha256_hex(&bytes);
        let blob = app.data_dir().join(format!("blobs/sha256/{}/{digest}", &digest[..2]));
        assert_eq!(std::fs::metadata(&blob).unwrap().ino(), inode, "published, not copied");
        assert_eq!(app.upload_files(), 0);
        let r = app.download(&app.admin, artifact["id"].as_str().unwrap(), &[]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }

    async fn refused_and_resent_attempts_never_spoil_accepted_bytes(app) {
        use base64::Engine;
        use std::os::unix::fs::MetadataExt;
        let m = model(&app, "m").await;
        let bytes = bytes_of(2 * CHUNK, 22);
        let digest = sha256_hex(&bytes);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK, "sha256": digest })).await;
        let id = s["id"].as_str().unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let claimed = |part: &[u8]| format!("sha-256=:{}:", b64(&hex::decode(sha256_hex(part)).unwrap()));
        let garbage = vec![0xAAu8; CHUNK];
        let spoiled = |index: usize| {
            app.client.put(format!("{}/v1/uploads/{id}/chunks/{index}", app.base)).bearer_auth(&app.admin)
                .header("content-digest", claimed(&bytes[index * CHUNK..(index + 1) * CHUNK]))
                .body(garbage.clone()).send()
        };
        assert_eq!(app.put_chunk(&app.admin, id, 0, &bytes[..CHUNK]).await.status(), 200);
        // A second attempt at chunk 0 whose bytes are not what its header says is refused,
        // and the accepted chunk 0 is untouched by it.
        let r = spoiled(0).await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "CHECKSUM_MISMATCH");
        // The first attempt at chunk 1 is refused the same way; the one re-sent after it counts.
        let r = spoiled(1).await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "CHECKSUM_MISMATCH");
        assert_eq!(app.put_chunk(&app.admin, id, 1, &bytes[CHUNK..]).await.status(), 200);
        let staged = app.data_dir().join(format!("uploads/{id}/data"));
        let inode = std::fs::metadata(&staged).unwrap().ino();
        let artifact = app.complete(&app.admin, id, json!({})).await;
        assert_eq!(artifact["sha256"], digest);
        let blob = app.data_dir().join(format!("blobs/sha256/{}/{digest}", &digest[..2]));
        assert_ne!(std::fs::metadata(&blob).unwrap().ino(), inode, "assembled from the file and the re-sent chunk");
        assert_eq!(app.upload_files(), 0);
        let r = app.download(&app.admin, artifact["id"].as_str().unwrap(), &[]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }

    async fn a_slow_first_attempt_never_replaces_a_recorded_chunk(app) {
        let m = model(&app, "m").await;
        let bytes = bytes_of(2 * CHUNK, 24);
        let digest = sha256_hex(&bytes);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "f.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": CHUNK, "sha256": digest })).await;
        let id = s["id"].as_str().unwrap().to_owned();
        // The first attempt at chunk 0 (written in place) stalls half-way with other bytes...
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
        let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let first = tokio::spawn(app.client.put(format!("{}/v1/uploads/{id}/chunks/0", app.base))
            .bearer_auth(&app.admin).header("content-length", CHUNK).body(body).send());
        let other = vec![0x55u8; CHUNK];
        tx.send(Ok(other[..CHUNK / 2].to_vec())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // ...while a second attempt, stored on its own, is recorded.
        assert_eq!(app.put_chunk(&app.admin, &id, 0, &bytes[..CHUNK]).await.status(), 200);
        tx.send(Ok(other[CHUNK / 2..].to_vec())).await.unwrap();
        drop(tx);
        assert_eq!(first.await.unwrap().unwrap().status(), 200);
        assert_eq!(app.put_chunk(&app.admin, &id, 1, &bytes[CHUNK..]).await.status(), 200);
        // The chunk recorded first stays: the upload is the bytes the second attempt sent.
        let artifact = app.complete(&app.admin, &id, json!({})).await;
        assert_eq!(artifact["sha256"], digest);
    }
}
