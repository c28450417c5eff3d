//! The registry's closed vocabularies. Stored as their GraphQL names, so a row reads the same in
//! the database, the API and the logs.

use crate::db::types::text_enum;

text_enum! {
    /// What an API key may do inside its scope; each role includes the ones before it.
    pub enum Role {
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
        Ready = "READY",
        Active = "ACTIVE",
        Failed = "FAILED",
        Deleted = "DELETED",
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
