//! The migrations are embedded at compile time (`embed_migrations!`), which does not tell cargo
//! to watch their folder: without this, a new migration is left out until the crate happens to
//! be rebuilt for another reason.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
