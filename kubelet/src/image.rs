//! Maps container image names to locally built binaries.
//!
//! No container runtime runs here, so an image stands for one executable: its entrypoint.
//! The map is keyed by repository; tags and digests are ignored, so
//! `ghcr.io/zonefleet/dns-pod:0.1.0` and `ghcr.io/zonefleet/dns-pod@sha256:…` both resolve to
//! the binary mapped for `ghcr.io/zonefleet/dns-pod`.

use std::{collections::BTreeMap, path::PathBuf};

/// Image repository → local executable.
#[derive(Clone, Debug, Default)]
pub struct ImageMap {
    binaries: BTreeMap<String, PathBuf>,
}

/// A `--image` flag that is not `repository=path`.
#[derive(Debug, thiserror::Error)]
#[error("image mapping {0:?} is not of the form REPOSITORY=PATH")]
pub struct InvalidImageMapping(String);

impl ImageMap {
    /// Adds a mapping given as `repository=path`.
    pub fn add_mapping(&mut self, mapping: &str) -> Result<(), InvalidImageMapping> {
        let (image, path) = mapping
            .split_once('=')
            .filter(|(image, path)| !image.is_empty() && !path.is_empty())
            .ok_or_else(|| InvalidImageMapping(mapping.to_owned()))?;
        self.binaries
            .insert(repository_of(image).to_owned(), PathBuf::from(path));
        Ok(())
    }

    /// The binary an image runs, if it is mapped.
    pub fn resolve(&self, image: &str) -> Option<&PathBuf> {
        self.binaries.get(repository_of(image))
    }

    /// The mapped repositories, for error messages.
    pub fn repositories(&self) -> impl Iterator<Item = &str> {
        self.binaries.keys().map(String::as_str)
    }
}

/// Strips the digest (`@sha256:…`) and the tag (`:tag` after the last `/`) from an image name.
pub fn repository_of(image: &str) -> &str {
    let without_digest = image.split_once('@').map_or(image, |(repo, _)| repo);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_ignores_tags_digests_and_registry_ports() {
        assert_eq!(repository_of("busybox"), "busybox");
        assert_eq!(repository_of("busybox:1.36"), "busybox");
        assert_eq!(
            repository_of("ghcr.io/zonefleet/dns-pod:0.1.0"),
            "ghcr.io/zonefleet/dns-pod"
        );
        assert_eq!(repository_of("localhost:5000/op"), "localhost:5000/op");
        assert_eq!(repository_of("localhost:5000/op:v1"), "localhost:5000/op");
        assert_eq!(repository_of("repo/img@sha256:abcd"), "repo/img");
        assert_eq!(repository_of("repo/img:v1@sha256:abcd"), "repo/img");
    }

    #[test]
    fn resolves_by_repository() {
        let mut map = ImageMap::default();
        map.add_mapping("ghcr.io/zonefleet/dns-pod=/bin/dns-pod")
            .unwrap();
        assert_eq!(
            map.resolve("ghcr.io/zonefleet/dns-pod:latest"),
            Some(&PathBuf::from("/bin/dns-pod"))
        );
        assert_eq!(map.resolve("ghcr.io/zonefleet/operator:latest"), None);
    }

    #[test]
    fn rejects_malformed_mappings() {
        let mut map = ImageMap::default();
        assert!(map.add_mapping("no-equals-sign").is_err());
        assert!(map.add_mapping("=/bin/x").is_err());
        assert!(map.add_mapping("image=").is_err());
    }
}
