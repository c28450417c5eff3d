//! The registry's closed vocabularies. Stored as their GraphQL names, so a row reads the same in
//! the database, the API and the logs.

use super::scalars::text_enum;

text_enum! {
    /// What an API key may do inside its scope; each role from VIEWER on includes the ones
    /// before it. INGEST stands apart: it only sends its project's telemetry.
    pub enum Role {
        /// Sends telemetry (heartbeats, inference sessions, training updates) of its project
        /// and reads nothing: the key a device carries. Project keys only.
        Ingest = "INGEST",
        /// Read and download.
        Viewer = "VIEWER",
        /// Create, update, upload, delete, share.
        Editor = "EDITOR",
        /// Manage keys and quotas.
        Admin = "ADMIN",
    }
}

text_enum! {
    pub enum ProductType {
        MlModel = "ML_MODEL",
        AiSystem = "AI_SYSTEM",
        LlmAgent = "LLM_AGENT",
        AiApp = "AI_APP",
        Agent = "AGENT",
        PromptCollection = "PROMPT_COLLECTION",
    }
}

text_enum! {
    pub enum ModelFamily {
        TraditionalMl = "TRADITIONAL_ML",
        Genai = "GENAI",
        FoundationModel = "FOUNDATION_MODEL",
        EmbeddingModel = "EMBEDDING_MODEL",
        Agent = "AGENT",
        AiApp = "AI_APP",
        PromptCollection = "PROMPT_COLLECTION",
        Other = "OTHER",
    }
}

text_enum! {
    /// `PENDING` until a verified artifact exists, `READY` after, `ACTIVE` while an endpoint
    /// serves it; `DELETED` is what `deleteModel` answers with.
    pub enum ModelStatus {
        Pending = "PENDING",
        /// The server is working on the model's files (a conversion); not deployable meanwhile.
        Processing = "PROCESSING",
        Ready = "READY",
        Active = "ACTIVE",
        Failed = "FAILED",
        Deleted = "DELETED",
    }
}

text_enum! {
    /// Which service tiers other projects may deploy a shared model on.
    pub enum CatalogRole {
        /// The role a model is shared with: other projects deploy it on the self-hosted tier
        /// only.
        Deployable = "DEPLOYABLE",
        /// Every tier. The owner running it on a shared tier promotes it; it returns to
        /// DEPLOYABLE when no endpoint on a shared tier is active.
        Shared = "SHARED",
    }
}

text_enum! {
    /// Whether an endpoint serves.
    pub enum EndpointStatus {
        Active = "ACTIVE",
        Stopped = "STOPPED",
    }
}

text_enum! {
    /// `DRAFT → PUBLISHED → DEPRECATED`, forward only.
    pub enum VersionLifecycle {
        Draft = "DRAFT",
        Published = "PUBLISHED",
        Deprecated = "DEPRECATED",
    }
}

text_enum! {
    /// What an artifact file is to its model.
    pub enum ArtifactKind {
        /// A serialized model or model package (the default).
        ModelBinary = "MODEL_BINARY",
        Weights = "WEIGHTS",
        /// A training or fine-tuning checkpoint.
        Checkpoint = "CHECKPOINT",
        /// An adapter or delta (LoRA and the like).
        Adapter = "ADAPTER",
        Tokenizer = "TOKENIZER",
        PromptBundle = "PROMPT_BUNDLE",
        EvalReport = "EVAL_REPORT",
        ModelCard = "MODEL_CARD",
        Other = "OTHER",
    }
}

text_enum! {
    pub enum ArtifactStatus {
        /// Stored, verified and downloadable.
        Available = "AVAILABLE",
        /// Gone from lists; its bytes stay while another artifact names them.
        Deleted = "DELETED",
        Failed = "FAILED",
    }
}

text_enum! {
    /// `INITIALIZED → UPLOADING → COMPLETED`; `FAILED` on a digest mismatch or abort,
    /// `EXPIRED` when its time ran out first.
    pub enum UploadStatus {
        Initialized = "INITIALIZED",
        Uploading = "UPLOADING",
        Completed = "COMPLETED",
        Failed = "FAILED",
        Expired = "EXPIRED",
    }
}

text_enum! {
    /// How the bytes of an upload travel.
    pub enum UploadMethod {
        /// Chunks PUT to this server by index.
        Chunked = "CHUNKED",
        /// One object PUT straight to storage (or to a signed URL of this server).
        Direct = "DIRECT",
    }
}

impl UploadStatus {
    /// The states of a session that still takes chunks and may be completed.
    pub const OPEN: [UploadStatus; 2] = [UploadStatus::Initialized, UploadStatus::Uploading];

    pub fn is_open(self) -> bool {
        UploadStatus::OPEN.contains(&self)
    }
}

text_enum! {
    /// A device's health, from the age of its last heartbeat.
    pub enum DeviceHealth {
        /// A heartbeat arrived within the healthy threshold (5 minutes by default).
        Healthy = "HEALTHY",
        /// The last heartbeat is older than the healthy threshold but within the offline one
        /// (1 hour by default).
        Degraded = "DEGRADED",
        /// No heartbeat within the offline threshold, or none ever.
        Offline = "OFFLINE",
    }
}

text_enum! {
    /// The width of a telemetry time bucket (UTC-aligned).
    pub enum TimeBucket {
        Minute = "MINUTE",
        Hour = "HOUR",
        Day = "DAY",
    }
}
