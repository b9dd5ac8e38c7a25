//! Zonefleet's benchmarks. Each is a binary in `src/bin/`; see `docs/benchmarks.md`. This
//! library holds what the benchmarks share beyond the end-to-end harness (`zonefleet-e2e`).

use kube::{
    Api,
    api::{ListParams, PostParams},
};
use zonefleet_api::Zone;

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

/// How many Zones have a serial in their status (listed `page` at a time).
pub async fn count_zones_with_serial(zones: &Api<Zone>, page: u32) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut params = ListParams::default().limit(page);
    loop {
        let page = zones.list(&params).await?;
        count += page
            .items
            .iter()
            .filter(|z| z.status.as_ref().and_then(|s| s.serial).is_some())
            .count();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(count),
        }
    }
}
