//! Writes the CRD YAML of the `dns.zonefleet.io` API into a directory (default `crds/`),
//! and the CRD reference into `docs/crd-reference.md` (or the second argument).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("crds"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for crd in zonefleet_api::crds() {
        let path = dir.join(zonefleet_api::crd_file_name(&crd));
        std::fs::write(&path, zonefleet_api::crd_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    let chart = PathBuf::from("charts/zonefleet/templates/crds");
    std::fs::create_dir_all(&chart)?;
    for crd in zonefleet_api::crds() {
        let path = chart.join(zonefleet_api::crd_file_name(&crd));
        std::fs::write(&path, zonefleet_api::crd_chart_template(&crd)?)?;
        println!("wrote {}", path.display());
    }
    let reference = std::env::args_os()
        .nth(2)
        .map_or_else(|| PathBuf::from("docs/crd-reference.md"), PathBuf::from);
    if let Some(parent) = reference.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &reference,
        zonefleet_api::reference::markdown(&zonefleet_api::crds()),
    )?;
    println!("wrote {}", reference.display());
    Ok(())
}
