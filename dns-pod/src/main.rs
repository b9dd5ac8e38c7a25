//! The DNS pod binary: a thin entry point over the `zonefleet_dns_pod` library.

use clap::Parser;
use zonefleet_dns_pod::{config::Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    run::init_logging(config.log_format);
    run::run(config).await
}
