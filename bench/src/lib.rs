//! Zonefleet's benchmarks. Each is a binary in `src/bin/`; see `docs/benchmarks.md`. This
//! library holds what the benchmarks share beyond the end-to-end harness (`zonefleet-e2e`).

use kube::{Api, api::PostParams};

/// Creates `object`; one that already exists (409 Conflict) is kept as it is.
pub async fn create<K>(api: &Api<K>, object: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
