//! The same artifacts on an S3-compatible service: multipart writes, presigned downloads and
//! presigned direct uploads, collection of objects.

use serde_json::{Value, json};

use crate::support::{CHUNK, TestApp, bytes_of, sha256_hex};

macro_rules! on_s3 {
    ($(async fn $name:ident($app:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = TestApp::s3(false).await;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = TestApp::s3(true).await;
                $body
            }
        }
    )*};
}

on_s3! {
    async fn artifacts_round_trip_through_s3(app) {
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        assert_eq!(ready["storage"], "ok");
        let project = app.default_project().await;
        let m = app.create_model(&app.admin, &project, "m", json!({})).await;
        let bytes = bytes_of(3 * CHUNK + 5, 21);
        let artifact = app.upload(&app.admin, &m, None, "w.safetensors", &bytes).await;
        assert_eq!(artifact["storageBackend"], "s3");
        assert!(artifact["storageUri"].as_str().unwrap().starts_with("s3://registry/"));
        let id = artifact["id"].as_str().unwrap();

        let r = app.download(&app.admin, id, &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
        let r = app.download(&app.admin, id, &[("Range", "bytes=100-199")]).await;
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[100..200]);

        // `?redirect=true` hands the bytes to the storage service.
        let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = no_redirects.get(format!("{}/v1/artifacts/{id}/download?redirect=true", app.base)).bearer_auth(&app.admin).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(!location.starts_with(&app.base), "{location}");
        let r = reqwest::get(&location).await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // Signed URLs are the service's own presigned URLs.
        let data = app.ok(&app.admin, "query($id: ID!) { artifact(id: $id) { downloadUrl { url } } }", json!({ "id": id })).await;
        let url = data["artifact"]["downloadUrl"]["url"].as_str().unwrap();
        assert!(url.contains("X-Amz-Signature"), "{url}");
        let r = reqwest::get(url).await.unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // A direct upload goes straight to the service and is verified on confirmation.
        let direct = app.ok(&app.admin, "mutation($i: CreateUploadSessionInput!) { createDirectUpload(input: $i) { uploadUrl uploadSession { id } } }", json!({ "i": { "modelId": m, "fileName": "d.bin", "totalSizeBytes": bytes.len() } })).await;
        let upload_url = direct["createDirectUpload"]["uploadUrl"].as_str().unwrap();
        assert!(upload_url.contains("X-Amz-Signature"), "{upload_url}");
        let r = reqwest::Client::new().put(upload_url).body(bytes.clone()).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let session = direct["createDirectUpload"]["uploadSession"]["id"].clone();
        let confirmed = app.ok(&app.admin, "mutation($i: CompleteUploadSessionInput!) { confirmDirectUpload(input: $i) { artifact { id sha256 storageUri } } }", json!({ "i": { "id": session } })).await;
        let copy = &confirmed["confirmDirectUpload"]["artifact"];
        assert_eq!(copy["sha256"], sha256_hex(&bytes));
        assert_eq!(copy["storageUri"], artifact["storageUri"], "stored once");

        // Deleting both and collecting removes the object.
        let delete = "mutation($i: ArtifactIdInput!) { deleteArtifact(input: $i) { artifact { id } } }";
        app.ok(&app.admin, delete, json!({ "i": { "id": id } })).await;
        app.ok(&app.admin, delete, json!({ "i": { "id": copy["id"] } })).await;
        let key = model_registry::storage::blob_key(&sha256_hex(&bytes));
        assert!(app.app.storage.exists(&key).await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(model_registry::jobs::collect_blobs(&app.app, std::time::Duration::ZERO).await.unwrap(), 1);
        assert!(!app.app.storage.exists(&key).await.unwrap());
    }

    async fn completion_assembles_the_chunks_inside_the_store(app) {
        let project = app.default_project().await;
        let m = app.create_model(&app.admin, &project, "m", json!({})).await;
        // Chunks of S3's smallest part size: each becomes a part copied by the store itself.
        let chunk = 5 * 1024 * 1024;
        let bytes = bytes_of(2 * chunk + 5, 23);
        let digest = sha256_hex(&bytes);
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "w.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": chunk })).await;
        let id = s["id"].as_str().unwrap();
        app.put_all(&app.admin, id, &bytes, chunk).await;
        let artifact = app.complete(&app.admin, id, json!({})).await;
        assert_eq!(artifact["sha256"], digest);
        let key = model_registry::storage::blob_key(&digest);
        let stat = app.app.storage.operator().stat(&key).await.unwrap();
        let etag = stat.etag().unwrap().trim_matches('"').to_owned();
        assert!(etag.ends_with("-3"), "one part per chunk, not the server's own 8 MiB parts: {etag}");
        let r = app.download(&app.admin, artifact["id"].as_str().unwrap(), &[]).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // Bytes that do not hash to the announced digest are never assembled.
        let wrong = sha256_hex(b"other bytes");
        let s = app.open_upload(&app.admin, json!({ "modelId": m, "fileName": "x.bin", "totalSizeBytes": bytes.len(), "chunkSizeBytes": chunk, "sha256": wrong })).await;
        let id = s["id"].as_str().unwrap();
        app.put_all(&app.admin, id, &bytes, chunk).await;
        app.fails(&app.admin, crate::support::COMPLETE, json!({ "i": { "id": id } }), "CHECKSUM_MISMATCH").await;
        let key = model_registry::storage::blob_key(&wrong);
        assert!(!app.app.storage.exists(&key).await.unwrap());
    }
}
