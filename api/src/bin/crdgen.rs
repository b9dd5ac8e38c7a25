//! Writes the CRD YAML of the `dns.zonefleet.io` API into a directory (default `crds/`).

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
    Ok(())
}
