//! The committed CRD YAML in `crds/` must be exactly what the Rust types generate.

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    for crd in zonefleet_api::crds() {
        let path = dir.join(zonefleet_api::crd_file_name(&crd));
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p zonefleet-api --bin crdgen`",
                path.display()
            )
        });
        let generated = zonefleet_api::crd_yaml(&crd).unwrap();
        assert!(
            committed == generated,
            "{} differs from the types; run `cargo run -p zonefleet-api --bin crdgen`",
            path.display()
        );
    }
}

#[test]
fn committed_crd_reference_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/crd-reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == zonefleet_api::reference::markdown(&zonefleet_api::crds()),
        "{} differs from the types; run `cargo run -p zonefleet-api --bin crdgen`",
        path.display()
    );
}

#[test]
fn the_charts_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/zonefleet/templates/crds");
    for crd in zonefleet_api::crds() {
        let path = dir.join(zonefleet_api::crd_file_name(&crd));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == zonefleet_api::crd_chart_template(&crd).unwrap(),
            "{} differs from the types; run `cargo run -p zonefleet-api --bin crdgen`",
            path.display()
        );
    }
}
