//! Runs a command in a private mount namespace with volumes bound into it; used by the
//! process kubelet to start containers (see `zonefleet_process_kubelet::mount_namespace`).

use std::ffi::OsString;

use clap::Parser;
use zonefleet_process_kubelet::mount_namespace::{Bind, enter_and_exec};

/// Binds volumes into a private mount namespace, then executes the command.
#[derive(Debug, Parser)]
struct Args {
    /// `SOURCE=TARGET`: a read-write bind. Repeatable.
    #[arg(long = "bind")]
    binds: Vec<String>,
    /// `SOURCE=TARGET`: a read-only bind. Repeatable.
    #[arg(long = "bind-ro")]
    read_only_binds: Vec<String>,
    /// Make everything outside the binds read-only.
    #[arg(long)]
    read_only_root: bool,
    /// The command to execute.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binds = args
        .binds
        .iter()
        .map(|b| Bind::parse(b, false))
        .chain(args.read_only_binds.iter().map(|b| Bind::parse(b, true)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    enter_and_exec(&binds, args.read_only_root, &args.command)
}
