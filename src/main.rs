//! The `model-registry` binary: parses the command line and hands over to `cli`.

use clap::Parser;
use model_registry::cli::{Cli, Command};

/// A request allocates thousands of small values (rows, GraphQL values, JSON); glibc's
/// allocator spent a fifth of the model list's time in malloc and free, and kept per-thread
/// arenas that grew the resident memory under ingest.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    model_registry::allocator::configure();
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", model_registry::graphql::sdl());
        return Ok(());
    }
    model_registry::logging::init(cli.log_format());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(model_registry::cli::run(cli))
}
