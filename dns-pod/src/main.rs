//! The DNS pod binary: a thin entry point over the `zonefleet_dns_pod` library.

use clap::Parser;
use zonefleet_dns_pod::{config::Config, run};

/// mimalloc gives memory freed after a zone is loaded back to the system, where glibc's
/// allocator keeps the loading peak resident (1M names: 202 MB resident instead of 750).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    run::init_logging(config.log_format);
    run::run(config).await
}
