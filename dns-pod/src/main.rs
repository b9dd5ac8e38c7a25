//! The DNS pod binary: a thin entry point over the `zonefleet_dns_pod` library.

fn main() {
    eprintln!(
        "zonefleet-dns-pod {}: the server is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
