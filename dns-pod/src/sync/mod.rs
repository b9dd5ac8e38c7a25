//! Following NATS: build the zones from the snapshot store, then apply change events as
//! they come, and answer targeted re-sync requests.
//!
//! The event consumer is created before the store is listed, so no event falls between
//! the two; events older than what the listing loaded are ignored as stale (every update
//! is keyed by zone and serial). After a reconnection the store is listed again, as a
//! backstop for anything missed. Everything runs in one task, so updates never race.
//!
//! A version that cannot be decoded or built into a served zone is refused: logged, counted
//! by reason, and remembered per zone (see [`refusals`]) for `/refused` and re-sync replies.
//! The pod keeps serving what it had, and later versions still apply.

mod access;
mod plan;
pub mod refusals;

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::{
    Client, Event,
    jetstream::{
        self,
        consumer::{DeliverPolicy, push},
        object_store::{GetErrorKind, ObjectStore},
    },
};
use futures::StreamExt;
use hickory_proto::rr::Name;
use tokio::{io::AsyncReadExt, sync::Notify};
use tracing::{debug, info, warn};
use zonefleet_admin::Readiness;
use zonefleet_nats::{
    EventHeaders, Layout, META_DIGEST, META_SERIAL, MessageKey, RefusedVersion, ResyncReply,
    ResyncRequest, SIGNATURE,
};
use zonefleet_wire::Message;

pub use access::AccessFollower;
pub use plan::{Plan, is_newer, plan};
pub use refusals::{RefusalBook, Refusals};

use crate::{
    authority::BuildError,
    local_snapshot::LocalSnapshot,
    metrics::SyncMetrics,
    zones::{DeltaError, LoadError, ServedZone, ZoneStore},
};

/// Where a follower gets its zones and puts what it serves.
#[derive(Clone, Debug)]
pub struct Follower {
    /// The NATS connection.
    pub client: Client,
    /// The names under the prefix.
    pub layout: Layout,
    /// This pod's name, for its re-sync subject.
    pub pod: String,
    /// The served zones.
    pub zones: Arc<ZoneStore>,
    /// Sync metrics.
    pub metrics: Arc<SyncMetrics>,
    /// The local snapshot, if kept.
    pub local: Option<LocalSnapshot>,
    /// Set ready after the first complete sync.
    pub readiness: Readiness,
    /// Notified on every (re)connection.
    pub connected: Arc<Notify>,
    /// If set, events and snapshots must carry a valid signature.
    pub key: Option<MessageKey>,
    /// The versions refused, per zone.
    pub refusals: Arc<RefusalBook>,
}

/// The callback for connection events: the gauge, and a wake-up on (re)connection.
pub fn on_connection_event(
    metrics: Arc<SyncMetrics>,
    connected: Arc<Notify>,
) -> impl Fn(Event) -> futures::future::Ready<()> + Send + Sync + 'static {
    move |event| {
        match event {
            Event::Connected => {
                info!("connected to NATS");
                metrics.connected.set(1);
                connected.notify_one();
            }
            Event::Disconnected => {
                warn!("disconnected from NATS; serving what we have, reconnecting");
                metrics.connected.set(0);
            }
            other => debug!(event = %other, "NATS"),
        }
        futures::future::ready(())
    }
}

/// Why a zone could not be updated.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// A NATS operation failed.
    #[error("NATS: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A subscription NATS ended.
    #[error("NATS: the {0} ended")]
    Ended(&'static str),
    /// The message does not decode as a zone version.
    #[error("malformed message: {0}")]
    Malformed(#[source] zonefleet_wire::WireError),
    /// A snapshot stored under one zone holds another.
    #[error("malformed message: a snapshot of {stored} holds the zone {holds}")]
    OtherZone { stored: Box<Name>, holds: Box<Name> },
    #[error("the message on {subject} is about the zone {zone}")]
    WrongSubject { subject: String, zone: String },
    /// An encoded snapshot cannot be served.
    #[error("{}", load_text(.0))]
    Load(#[source] LoadError),
    /// A delta's result does not make a zone.
    #[error("invalid zone: {0}")]
    InvalidZone(#[source] BuildError),
    /// Building a version stopped (its task panicked or was cancelled).
    #[error("invalid zone: {0}")]
    Building(#[source] tokio::task::JoinError),
    #[error("unauthenticated: {0}")]
    Unauthenticated(zonefleet_nats::SignatureError),
    /// Any of the above, about a known version of a zone.
    #[error("{cause}")]
    Version {
        zone: Name,
        serial: Option<u32>,
        cause: Box<SyncError>,
    },
}

/// How a snapshot that cannot be served is reported (as the metrics' reasons name it).
fn load_text(error: &LoadError) -> String {
    match error {
        LoadError::Malformed(_) => format!("malformed message: {error}"),
        LoadError::Digest { .. } => error.to_string(),
        LoadError::Index(_) => format!("invalid zone: {error}"),
    }
}

impl SyncError {
    /// The reason label of a rejected message.
    fn reason(&self) -> &'static str {
        match self {
            Self::Nats(_) | Self::Ended(_) => "nats",
            Self::Malformed(_) | Self::OtherZone { .. } | Self::Load(LoadError::Malformed(_)) => {
                "malformed"
            }
            Self::WrongSubject { .. } => "wrong_subject",
            Self::InvalidZone(_) | Self::Building(_) | Self::Load(LoadError::Index(_)) => {
                "invalid_zone"
            }
            Self::Load(LoadError::Digest { .. }) => "digest",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Version { cause, .. } => cause.reason(),
        }
    }

    /// The error about a version of `zone` (its serial, if known); an error already about a
    /// version keeps what it knows.
    fn about(self, zone: &Name, serial: Option<u32>) -> Self {
        match self {
            Self::Version {
                zone,
                serial: known,
                cause,
            } => Self::Version {
                zone,
                serial: known.or(serial),
                cause,
            },
            cause => Self::Version {
                zone: zone.clone(),
                serial,
                cause: Box::new(cause),
            },
        }
    }

    /// The zone and serial the error is about, if known.
    fn version(&self) -> Option<(&Name, Option<u32>)> {
        match self {
            Self::Version { zone, serial, .. } => Some((zone, *serial)),
            _ => None,
        }
    }

    /// True if the version itself is at fault: it does not decode, does not make a zone,
    /// or does not have its digest. (Not a NATS failure, nor a message that is not the
    /// publisher's: those say nothing about the version.)
    fn refuses_the_version(&self) -> bool {
        match self {
            Self::Malformed(_)
            | Self::OtherZone { .. }
            | Self::Load(_)
            | Self::InvalidZone(_)
            | Self::Building(_) => true,
            Self::Nats(_)
            | Self::Ended(_)
            | Self::WrongSubject { .. }
            | Self::Unauthenticated(_) => false,
            Self::Version { cause, .. } => cause.refuses_the_version(),
        }
    }
}

fn nats<E: std::error::Error + Send + Sync + 'static>(e: E) -> SyncError {
    SyncError::Nats(Box::new(e))
}

/// Runs `follow` forever, starting over after 0.5 s, doubling to 10 s while it keeps
/// failing, and logging each failure as `what` interrupted.
async fn follow_forever<F, Fut, E>(what: &str, mut follow: F) -> !
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(500);
    loop {
        match follow().await {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(error) => {
                warn!(%error, retry_in = ?backoff, "{what} interrupted");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

impl Follower {
    /// Follows NATS forever: waits for the stream and bucket, syncs, follows, and starts
    /// over if the consumer fails.
    pub async fn run(self) {
        follow_forever("NATS sync", || self.follow()).await
    }

    async fn follow(&self) -> Result<(), SyncError> {
        let jetstream = jetstream::new(self.client.clone());
        let stream = jetstream
            .get_stream(self.layout.event_stream())
            .await
            .map_err(nats)?;
        let store = jetstream
            .get_object_store(self.layout.snapshot_bucket())
            .await
            .map_err(nats)?;
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: self.layout.event_subjects(),
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(nats)?;
        let mut events = consumer.messages().await.map_err(nats)?;
        let mut resyncs = self
            .client
            .subscribe(self.layout.resync_subject(&self.pod))
            .await
            .map_err(nats)?;
        self.catch_up(&store).await?;
        if self.readiness.set_ready() {
            info!(zones = self.zones.load().len(), "initial sync complete");
        }
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(message)) => self.on_event(&store, &message.message).await,
                    Some(Err(e)) => return Err(nats(e)),
                    None => return Err(SyncError::Ended("event consumer")),
                },
                request = resyncs.next() => match request {
                    Some(request) => self.on_resync(&store, request).await,
                    None => return Err(SyncError::Ended("re-sync subscription")),
                },
                () = self.connected.notified() => {
                    info!("reconnected: checking the snapshot store for missed versions");
                    self.catch_up(&store).await?;
                }
            }
        }
    }

    /// Brings every zone to the version in the store (fetching those whose serial or
    /// digest differs from what is served); stops serving zones not in it.
    async fn catch_up(&self, store: &ObjectStore) -> Result<Vec<String>, SyncError> {
        let mut listing = store.list().await.map_err(nats)?;
        let mut listed = Vec::new();
        let mut errors = Vec::new();
        while let Some(info) = listing.next().await {
            let info = info.map_err(nats)?;
            if info.deleted {
                continue;
            }
            let Ok(origin) = Name::from_ascii(&info.name) else {
                warn!(object = info.name, "ignoring an object that names no zone");
                continue;
            };
            listed.push(origin.to_lowercase());
            let current = self
                .zones
                .load()
                .get(&origin)
                .map(|zone| (zone.serial().to_string(), zonefleet_wire::hex(&zone.digest)));
            let stored = (
                info.metadata.get(META_SERIAL).cloned().unwrap_or_default(),
                info.metadata.get(META_DIGEST).cloned().unwrap_or_default(),
            );
            if current.as_ref() == Some(&stored) {
                continue;
            }
            if let Err(error) = self.fetch(store, &origin, None).await {
                let error = error.about(&origin, None);
                self.reject(&error, "cannot load the zone's snapshot", None);
                errors.push(format!("{origin}: {error}"));
            }
        }
        let gone: Vec<Name> = self
            .zones
            .load()
            .iter()
            .map(|zone| zone.origin().to_lowercase())
            .filter(|origin| !listed.contains(origin))
            .collect();
        for origin in gone {
            self.remove(&origin, "no longer in the snapshot store");
        }
        // Zones refused but never served, and since dropped from the store.
        let listed: HashSet<String> = listed.iter().map(ToString::to_string).collect();
        self.refusals_changed(
            self.refusals
                .update(|refusals| refusals.retain(|zone| listed.contains(zone))),
        );
        Ok(errors)
    }

    /// Fetches a zone's snapshot and serves it; stops serving the zone if the store no
    /// longer has it.
    async fn fetch(
        &self,
        store: &ObjectStore,
        origin: &Name,
        published_at: Option<u64>,
    ) -> Result<(), SyncError> {
        let name = self.layout.object_name(&origin.to_string());
        let mut object = match store.get(&name).await {
            Ok(object) => object,
            Err(e) if e.kind() == GetErrorKind::NotFound => {
                self.remove(origin, "not in the snapshot store");
                return Ok(());
            }
            Err(e) => return Err(nats(e)),
        };
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(nats)?;
        if let Some(key) = &self.key {
            let signature = object.info().metadata.get(SIGNATURE).map(String::as_str);
            key.verify(&name, &bytes, signature)
                .map_err(SyncError::Unauthenticated)?;
        }
        self.serve_encoded(bytes, origin, published_at).await
    }

    /// Indexes an encoded snapshot of `origin` (decoded one record at a time, and checked
    /// against its digest) and serves it; the bytes become the local copy.
    ///
    /// An error is about `origin` and the serial in the snapshot's header, if it reads.
    async fn serve_encoded(
        &self,
        bytes: Vec<u8>,
        origin: &Name,
        published_at: Option<u64>,
    ) -> Result<(), SyncError> {
        let serial = zonefleet_wire::peek(&bytes).ok().map(|(_, serial)| serial);
        self.build_and_serve(bytes, origin, published_at)
            .await
            .map_err(|error| error.about(origin, serial))
    }

    /// [`Self::serve_encoded`] without naming the version in its errors.
    async fn build_and_serve(
        &self,
        bytes: Vec<u8>,
        origin: &Name,
        published_at: Option<u64>,
    ) -> Result<(), SyncError> {
        let started = Instant::now();
        let (zone, bytes) = tokio::task::spawn_blocking(move || {
            let zone = ServedZone::from_encoded(&bytes);
            (zone, bytes)
        })
        .await
        .map_err(SyncError::Building)?;
        let zone = zone.map_err(SyncError::Load)?;
        if !zone.origin().eq_ignore_root(origin) {
            return Err(SyncError::OtherZone {
                stored: Box::new(origin.clone()),
                holds: Box::new(zone.origin().clone()),
            });
        }
        self.serve(zone, "snapshot", published_at, Some(bytes), started);
        Ok(())
    }

    /// Serves a built version (whose building began at `started`), and saves it to the
    /// local copy from `encoded`.
    fn serve(
        &self,
        zone: ServedZone,
        kind: &'static str,
        published_at: Option<u64>,
        encoded: Option<Vec<u8>>,
        started: Instant,
    ) {
        let zone_origin = zone.origin().clone();
        let origin = zone_origin.to_string();
        let serial = zone.serial();
        self.zones.insert(zone);
        self.metrics.applied(kind, started.elapsed());
        self.metrics.served(&origin, serial);
        self.metrics.zone_count(self.zones.load().len());
        self.refusals_changed(self.refusals.update(|r| r.served(&origin, serial)));
        if let Some(published_at) = published_at {
            let lag = zonefleet_nats::unix_millis().saturating_sub(published_at);
            self.metrics.lag.observe(lag as f64 / 1000.0);
        }
        if let (Some(local), Some(bytes)) = (&self.local, encoded) {
            local.save(&zone_origin, bytes);
        }
        info!(zone = %origin, serial, kind, took = ?started.elapsed(), "serving zone version");
    }

    fn remove(&self, origin: &Name, why: &str) {
        self.refusals_changed(
            self.refusals
                .update(|refusals| refusals.retracted(&origin.to_string())),
        );
        if self.zones.remove(origin) {
            let origin = origin.to_string();
            self.metrics.retracted(&origin);
            self.metrics.zone_count(self.zones.load().len());
            if let Some(local) = &self.local {
                local.remove(&origin);
            }
            info!(zone = %origin, why, "zone no longer served");
        }
    }

    /// A message or version was rejected: logs one line, counts it by reason, and, if the
    /// version itself is at fault, remembers it as the zone's refused version.
    fn reject(&self, error: &SyncError, what: &str, subject: Option<&str>) {
        self.metrics.rejected(error.reason());
        let Some((zone, serial)) = error.version() else {
            warn!(subject, %error, "{what}");
            return;
        };
        warn!(zone = %zone, serial, subject, reason = error.reason(), %error, "{what}");
        if error.refuses_the_version() {
            let served = self.zones.load().get(zone).map(|zone| zone.serial());
            let refused = RefusedVersion {
                zone: zone.to_string(),
                serial,
                reason: error.reason().to_owned(),
                error: error.to_string(),
                at_millis: zonefleet_nats::unix_millis(),
            };
            self.refusals_changed(self.refusals.update(|r| r.refuse(refused, served)));
        }
    }

    /// Updates the gauge of zones with a refused version, if the refusals `changed`.
    fn refusals_changed(&self, changed: bool) {
        if changed {
            let count = self.refusals.update(|refusals| refusals.len());
            self.metrics.refused_zones(count);
        }
    }

    /// Applies one change event. A bad message is logged and counted, and changes nothing;
    /// a version that does not decode or build is also remembered as refused.
    async fn on_event(&self, store: &ObjectStore, message: &async_nats::Message) {
        let published_at = message
            .headers
            .as_ref()
            .and_then(|h| h.get(EventHeaders::PUBLISHED_AT))
            .and_then(|v| v.as_str().parse().ok());
        if let Err(error) = self.apply_event(store, message, published_at).await {
            self.reject(
                &error,
                "change event not applied",
                Some(message.subject.as_str()),
            );
        }
    }

    async fn apply_event(
        &self,
        store: &ObjectStore,
        message: &async_nats::Message,
        published_at: Option<u64>,
    ) -> Result<(), SyncError> {
        if let Some(key) = &self.key {
            let signature = message
                .headers
                .as_ref()
                .and_then(|h| h.get(SIGNATURE))
                .map(|v| v.as_str());
            key.verify(message.subject.as_str(), &message.payload, signature)
                .map_err(SyncError::Unauthenticated)?;
        }
        let decoded = match zonefleet_wire::decode(&message.payload) {
            Ok(decoded) => decoded,
            Err(error) => {
                let error = SyncError::Malformed(error);
                // A version whose records do not decode: named by its header, if that reads
                // and the message is on the zone's subject.
                return Err(match zonefleet_wire::peek(&message.payload) {
                    Ok((origin, serial)) => {
                        self.check_subject(message, &origin)?;
                        error.about(&origin, Some(serial))
                    }
                    Err(_) => error,
                });
            }
        };
        let origin = decoded.origin().clone();
        self.check_subject(message, &origin)?;
        let zones = self.zones.load();
        let served = zones.get(&origin);
        let plan = plan::plan(
            served.map(|zone| (zone.serial(), zone.digest.as_slice())),
            &decoded,
        );
        debug!(zone = %origin, serial = decoded.serial(), ?plan, "change event");
        if let Message::Retract(_) = &decoded {
            // Served or not, the zone is gone: so is any version of it refused.
            self.refusals_changed(
                self.refusals
                    .update(|refusals| refusals.retracted(&origin.to_string())),
            );
        }
        match plan {
            Plan::Ignore(why) => {
                self.metrics.applied("ignored", Duration::ZERO);
                debug!(zone = %origin, serial = decoded.serial(), why, "ignored");
                Ok(())
            }
            Plan::Remove => {
                self.remove(&origin, "retracted");
                Ok(())
            }
            Plan::Replace(_) => {
                // A snapshot small enough to travel in the event: indexed from its bytes.
                self.serve_encoded(message.payload.to_vec(), &origin, published_at)
                    .await
            }
            Plan::Apply(delta) => {
                let Some(base) = served.cloned() else {
                    return self.fetch(store, &origin, published_at).await;
                };
                let started = Instant::now();
                let serial = Some(delta.serial);
                let delta = delta.clone();
                let local = self.local.is_some();
                let applied = tokio::task::spawn_blocking(move || {
                    let next = base.apply(&delta)?;
                    let encoded = local.then(|| next.encode().ok()).flatten();
                    Ok::<_, DeltaError>((next, encoded))
                })
                .await
                .map_err(|e| SyncError::Building(e).about(&origin, serial))?;
                match applied {
                    Ok((next, encoded)) => {
                        self.serve(next, "delta", published_at, encoded, started);
                        Ok(())
                    }
                    Err(DeltaError::Apply(error)) => {
                        // The served version is not what the delta expects: start over
                        // from the snapshot.
                        warn!(zone = %origin, %error, "delta does not apply; fetching the snapshot");
                        self.fetch(store, &origin, published_at).await
                    }
                    Err(DeltaError::Index(error)) => {
                        Err(SyncError::InvalidZone(error).about(&origin, serial))
                    }
                }
            }
            Plan::Fetch => self.fetch(store, &origin, published_at).await,
        }
    }

    /// Fails unless `message` is on the event subject of `origin`.
    fn check_subject(&self, message: &async_nats::Message, origin: &Name) -> Result<(), SyncError> {
        let expected = self.layout.event_subject(&origin.to_string());
        if message.subject.as_str() == expected {
            Ok(())
        } else {
            Err(SyncError::WrongSubject {
                subject: message.subject.to_string(),
                zone: origin.to_string(),
            })
        }
    }

    /// Answers a re-sync request: fetch the named zones (or all) again, reply with what is
    /// served afterwards and the refusals of those zones.
    async fn on_resync(&self, store: &ObjectStore, request: async_nats::Message) {
        let Some(reply_to) = request.reply.clone() else {
            self.metrics.rejected("malformed");
            warn!("re-sync request without a reply subject");
            return;
        };
        let parsed: Result<ResyncRequest, _> = if request.payload.is_empty() {
            Ok(ResyncRequest::default())
        } else {
            serde_json::from_slice(&request.payload)
        };
        let reply = match parsed {
            Err(e) => {
                self.metrics.rejected("malformed");
                ResyncReply {
                    zones: Vec::new(),
                    errors: vec![format!("malformed request: {e}")],
                    refused: Vec::new(),
                }
            }
            Ok(request) => self.resync(store, &request).await,
        };
        info!(
            zones = reply.zones.len(),
            errors = reply.errors.len(),
            refused = reply.refused.len(),
            "answered a re-sync request"
        );
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        if let Err(error) = self.client.publish(reply_to, body.into()).await {
            warn!(%error, "cannot reply to a re-sync request");
        }
    }

    async fn resync(&self, store: &ObjectStore, request: &ResyncRequest) -> ResyncReply {
        let mut errors = Vec::new();
        let mut names = Vec::new();
        if request.zones.is_empty() {
            // Every zone: only those not at the store's version are fetched, so a fleet
            // with thousands of zones answers in the time its lagging zones take (a full
            // fetch of 1,000 zones took 7-8 s, longer than the operator waits).
            match self.catch_up(store).await {
                Ok(failed) => errors.extend(failed),
                Err(error) => errors.push(error.to_string()),
            }
        } else {
            for zone in &request.zones {
                let Ok(origin) = Name::from_ascii(zone) else {
                    errors.push(format!("{zone}: not a domain name"));
                    continue;
                };
                if let Err(error) = self.fetch(store, &origin, None).await {
                    let error = error.about(&origin, None);
                    self.reject(&error, "re-sync: cannot load the zone's snapshot", None);
                    errors.push(format!("{zone}: {error}"));
                }
                names.push(origin);
            }
        }
        let served = self.zones.load();
        let refusals = self.refusals.snapshot();
        let (zones, refused) = if request.zones.is_empty() {
            (served.summaries(), refusals.all())
        } else {
            (
                names
                    .iter()
                    .filter_map(|name| served.get(name).map(|zone| zone.summary()))
                    .collect(),
                refusals.of(request.zones.iter().map(String::as_str)),
            )
        };
        ResyncReply {
            zones,
            errors,
            refused,
        }
    }
}
