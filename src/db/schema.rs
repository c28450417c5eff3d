//! One schema for both backends: identifiers and JSON are `Text`, times are `Timestamp` (UTC).

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    projects (id) {
        id -> Text,
        organization_id -> Text,
        slug -> Text,
        name -> Text,
        description -> Nullable<Text>,
        max_models -> Nullable<BigInt>,
        max_versions_per_month -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        role -> Text,
        organization_id -> Nullable<Text>,
        project_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    models (id) {
        id -> Text,
        project_id -> Text,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        long_description -> Nullable<Text>,
        product_type -> Text,
        provider -> Nullable<Text>,
        environment -> Text,
        risk_classification -> Nullable<Text>,
        lifecycle_stage -> Nullable<Text>,
        model_family -> Nullable<Text>,
        model_task_type -> Nullable<Text>,
        model_architecture -> Nullable<Text>,
        framework -> Nullable<Text>,
        intended_use -> Nullable<Text>,
        limitations -> Nullable<Text>,
        deployment_status -> Text,
        serving_url -> Nullable<Text>,
        input_schema -> Nullable<Text>,
        output_schema -> Nullable<Text>,
        ai_system_type -> Nullable<Text>,
        vendor_name -> Nullable<Text>,
        vendor_product_name -> Nullable<Text>,
        vendor_model_id -> Nullable<Text>,
        deployment_environment -> Nullable<Text>,
        business_use_case -> Nullable<Text>,
        is_gpai -> Bool,
        capabilities -> Text,
        tags -> Text,
        enabled -> Bool,
        archived -> Bool,
        status -> Text,
        current_version_id -> Nullable<Text>,
        next_version_number -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        shared -> Bool,
        catalog_role -> Nullable<Text>,
        featured -> Bool,
        shared_at -> Nullable<Timestamp>,
        deployment_count -> BigInt,
    }
}

diesel::table! {
    model_versions (id) {
        id -> Text,
        model_id -> Text,
        version -> Text,
        number -> BigInt,
        description -> Nullable<Text>,
        release_date -> Nullable<Timestamp>,
        training_run_id -> Nullable<Text>,
        metrics -> Nullable<Text>,
        lifecycle -> Text,
        published_at -> Nullable<Timestamp>,
        deprecated_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    project_monthly_usage (project_id, month, shard) {
        project_id -> Text,
        month -> Text,
        shard -> Integer,
        versions_created -> BigInt,
    }
}

diesel::table! {
    blobs (sha256) {
        sha256 -> Text,
        size_bytes -> BigInt,
        created_at -> Timestamp,
        touched_at -> Timestamp,
    }
}

diesel::table! {
    artifact_packages (id) {
        id -> Text,
        model_id -> Text,
        version_id -> Text,
        format -> Text,
        primary_artifact_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    artifacts (id) {
        id -> Text,
        model_id -> Text,
        version_id -> Nullable<Text>,
        package_id -> Nullable<Text>,
        package_role -> Nullable<Text>,
        kind -> Text,
        version_label -> Nullable<Text>,
        file_name -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        format -> Nullable<Text>,
        storage_backend -> Text,
        storage_uri -> Text,
        external_uri -> Nullable<Text>,
        training_run_id -> Nullable<Text>,
        status -> Text,
        is_current -> Bool,
        metadata -> Nullable<Text>,
        uploaded_by -> Nullable<Text>,
        uploaded_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    upload_sessions (id) {
        id -> Text,
        model_id -> Text,
        version_id -> Nullable<Text>,
        method -> Text,
        file_name -> Text,
        content_type -> Text,
        total_size_bytes -> BigInt,
        expected_sha256 -> Nullable<Text>,
        chunk_size_bytes -> BigInt,
        chunk_count -> BigInt,
        artifact_kind -> Text,
        version_label -> Nullable<Text>,
        training_run_id -> Nullable<Text>,
        is_current -> Bool,
        external_uri -> Nullable<Text>,
        metadata -> Nullable<Text>,
        status -> Text,
        failure_reason -> Nullable<Text>,
        artifact_id -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expires_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        replace_existing -> Bool,
    }
}

diesel::table! {
    upload_chunks (session_id, chunk_index) {
        session_id -> Text,
        chunk_index -> BigInt,
        size_bytes -> BigInt,
        generation -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    upload_chunk_claims (session_id, chunk_index) {
        session_id -> Text,
        chunk_index -> BigInt,
        generation -> Text,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    endpoints (id) {
        id -> Text,
        project_id -> Text,
        model_id -> Text,
        model_version_id -> Text,
        name -> Text,
        tier -> Text,
        self_hosted -> Bool,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    catalog_revision (id) {
        id -> Integer,
        revision -> BigInt,
    }
}

diesel::table! {
    registry_changes (shard) {
        shard -> Integer,
        changes -> BigInt,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        project_id -> Text,
        external_id -> Text,
        device_type -> Nullable<Text>,
        os -> Nullable<Text>,
        runtime_version -> Nullable<Text>,
        labels -> Text,
        first_seen_at -> Timestamp,
        last_heartbeat_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    inference_sessions (project_id, id) {
        project_id -> Text,
        id -> Text,
        model_id -> Text,
        model_version_id -> Text,
        device_external_id -> Text,
        started_at -> Timestamp,
        latency_ms -> Double,
        ttft_ms -> Nullable<Double>,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
        success -> Bool,
        error_code -> Nullable<Text>,
    }
}

diesel::table! {
    inference_rollups (model_id, granularity, bucket_start, model_version_id) {
        model_id -> Text,
        granularity -> Text,
        bucket_start -> Timestamp,
        model_version_id -> Text,
        sessions -> BigInt,
        successes -> BigInt,
        latency_sum -> Double,
        ttft_count -> BigInt,
        ttft_sum -> Double,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        latency_sketch -> Nullable<Binary>,
        ttft_sketch -> Nullable<Binary>,
    }
}

diesel::table! {
    training_updates (project_id, id) {
        project_id -> Text,
        id -> Text,
        model_id -> Text,
        model_version_id -> Text,
        device_external_id -> Text,
        sample_count -> BigInt,
        metrics -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    training_device_stats (model_version_id, device_external_id) {
        model_version_id -> Text,
        device_external_id -> Text,
        model_id -> Text,
        updates -> BigInt,
        samples -> BigInt,
        latest_metrics -> Text,
        latest_recorded_at -> Timestamp,
    }
}

diesel::table! {
    training_metric_stats (model_version_id, metric) {
        model_version_id -> Text,
        metric -> Text,
        sketch -> Nullable<Binary>,
    }
}

diesel::joinable!(projects -> organizations (organization_id));
diesel::joinable!(models -> projects (project_id));
diesel::joinable!(model_versions -> models (model_id));
diesel::joinable!(artifacts -> models (model_id));
diesel::joinable!(artifact_packages -> models (model_id));
diesel::joinable!(upload_chunks -> upload_sessions (session_id));
diesel::joinable!(upload_chunk_claims -> upload_sessions (session_id));
diesel::joinable!(endpoints -> models (model_id));
diesel::joinable!(endpoints -> model_versions (model_version_id));
diesel::joinable!(endpoints -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    projects,
    api_keys,
    models,
    model_versions,
    project_monthly_usage,
    blobs,
    artifact_packages,
    artifacts,
    upload_sessions,
    upload_chunks,
    upload_chunk_claims,
    server_secrets,
    endpoints,
    catalog_revision,
    registry_changes,
    devices,
    inference_sessions,
    inference_rollups,
    training_updates,
    training_device_stats,
    training_metric_stats,
);
