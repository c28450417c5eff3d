//! A field of a partial update: left as it is, cleared, or set. Plain Rust, so `domain` can take
//! partial updates without knowing the API's own three-state type.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}
