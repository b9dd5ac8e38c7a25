//! The Record controller: reports Records that cannot be part of any zone — malformed ones,
//! and those whose Zone does not exist. Everything else is the Zone reconcile's.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::{
    Resource,
    core::DeserializeGuard,
    runtime::{controller::Action, events::EventType, reflector::ObjectRef},
};
use zonefleet_api::{Record, Zone};

use super::{Context, guarded, status, zone::write_record_status, zone_key_of};
use crate::{error::Result, zone::ObjectKey};

/// Reconciles one Record.
pub async fn reconcile(guard: Arc<DeserializeGuard<Record>>, ctx: Arc<Context>) -> Result<Action> {
    guarded("record", &guard, &ctx, |record| {
        reconcile_record(record, &ctx)
    })
    .await
}

async fn reconcile_record(record: &Record, ctx: &Context) -> Result<Action> {
    ctx.ensure_leading()?;
    // The Zone store completed its first list before any reconcile (`controller::run`).
    let Some((namespace, name)) = zone_key_of(record) else {
        return Ok(Action::await_change());
    };
    let zone_ref = ObjectRef::<DeserializeGuard<Zone>>::new(&name).within(&namespace);
    if ctx.zones.get(&zone_ref).is_some() {
        return Ok(Action::await_change());
    }
    let zone = ObjectKey { namespace, name };
    let desired = status::record_zone_missing(
        record.status.as_ref(),
        record.meta().generation,
        &zone,
        &record.spec.values,
        Timestamp::now(),
    );
    if record.status.as_ref() != Some(&desired) {
        write_record_status(ctx, record, &desired).await?;
        ctx.event(
            record,
            EventType::Warning,
            "ZoneNotFound",
            format!("Zone {zone} does not exist"),
        )
        .await;
    }
    Ok(Action::await_change())
}
