//! The operator binary: a thin entry point over the `zonefleet_operator` library.

fn main() {
    eprintln!(
        "zonefleet-operator {}: the controller is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
