//! Publishing zone versions to NATS JetStream.
//!
//! Every version goes to two places (names from [`zonefleet_nats::Layout`]):
//! - the snapshot object store, one object per zone, replaced by each version: any pod can
//!   rebuild any zone from it alone, whatever its size (the store chunks objects);
//! - the event stream, one subject per zone: a delta from the previous version (IXFR
//!   model) when there is one and it is small, the whole snapshot for a small new zone, or
//!   else an announcement that sends pods to the object store. A retraction on deletion.
//!
//! Each zone's access document (transfer rules and TSIG keys, secrets sealed) goes to the
//! access stream, which keeps the last message per zone subject. It is published only when
//! its `Zonefleet-Access-Digest` header differs from the last one's, and purged on deletion.
//!
//! Events carry `Nats-Msg-Id: <zone>@<serial>`, so a repeated publish within the stream's
//! duplicate window is stored once; pods key on (zone, serial) in any case. Each event also
//! expects the stream sequence of this publisher's previous event on the subject
//! (`Nats-Expected-Last-Subject-Sequence`): if another replica wrote in between, the
//! publish fails, the publisher forgets its cached base version, and the reconcile retries
//! from fresh state.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        object_store::{self, ObjectMetadata, ObjectStore},
        stream::{self, LastRawMessageErrorKind},
    },
};
use tokio::io::AsyncReadExt;
use zonefleet_nats::{
    ACCESS_DIGEST, EventHeaders, Layout, META_DIGEST, META_PUBLISHED_AT, META_SERIAL, MessageKey,
    SIGNATURE, ZoneAccess,
};
use zonefleet_wire::{Delta, Marker, Message, Snapshot};

use super::{PublishError, Publishing, ZonePublisher, ZoneVersion};
use crate::zone::ObjectKey;

/// How the stream and bucket are created.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// Replicas of the streams and the bucket (1 or 3 in practice).
    pub replicas: usize,
    /// Events up to this size carry their records; larger ones are announcements.
    pub inline_limit: usize,
    /// Events kept per zone.
    pub events_per_zone: i64,
    /// Signs events and snapshots, if set.
    pub key: Option<MessageKey>,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            inline_limit: 256 * 1024,
            events_per_zone: 64,
            key: None,
        }
    }
}

/// Publishes to NATS JetStream.
pub struct NatsPublisher {
    layout: Layout,
    jetstream: jetstream::Context,
    store: ObjectStore,
    /// The stream of access documents, the last per zone.
    access: stream::Stream,
    settings: NatsSettings,
    /// The last version published of each zone (by object name): the base of the next
    /// delta.
    last: Mutex<HashMap<String, Arc<Snapshot>>>,
    /// Versions known to be in the store (object name → serial and digest).
    confirmed: Mutex<HashMap<String, (u32, Vec<u8>)>>,
    /// The stream sequence of this publisher's last event per subject: the next event
    /// expects it, so a write by anyone else in between fails instead of interleaving.
    sequences: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for NatsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsPublisher")
            .field("layout", &self.layout)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn failed<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: &str,
) -> impl FnOnce(E) -> PublishError + '_ {
    move |e| PublishError::new(format!("NATS: {what}"), e)
}

/// The data behind `mutex`, also when a panic poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NatsPublisher {
    /// Forgets what this publisher believed about a zone's object: the base of its next
    /// delta, and the version it knew to be in the store.
    fn forget(&self, name: &str) {
        lock(&self.last).remove(name);
        lock(&self.confirmed).remove(name);
    }

    /// Creates the streams and the bucket if they are missing, and returns a publisher.
    pub async fn open(
        client: async_nats::Client,
        layout: Layout,
        settings: NatsSettings,
    ) -> Result<Self, PublishError> {
        let jetstream = jetstream::new(client);
        jetstream
            .get_or_create_stream(stream::Config {
                name: layout.event_stream(),
                description: Some("Zonefleet zone change events".into()),
                subjects: vec![layout.event_subjects()],
                max_messages_per_subject: settings.events_per_zone,
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(failed("creating the event stream"))?;
        let access = jetstream
            .get_or_create_stream(stream::Config {
                name: layout.access_stream(),
                description: Some(
                    "Zonefleet zone access documents (transfer rules, TSIG keys)".into(),
                ),
                subjects: vec![layout.access_subjects()],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                ..Default::default()
            })
            .await
            .map_err(failed("creating the access stream"))?;
        let bucket = layout.snapshot_bucket();
        let store = match jetstream.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => jetstream
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("Zonefleet zone snapshots".into()),
                    storage: stream::StorageType::File,
                    num_replicas: settings.replicas,
                    ..Default::default()
                })
                .await
                .map_err(failed("creating the snapshot bucket"))?,
        };
        Ok(Self {
            layout,
            jetstream,
            store,
            access,
            settings,
            last: Mutex::default(),
            confirmed: Mutex::default(),
            sequences: Mutex::default(),
        })
    }

    /// The version of a zone in the store, if it is the one with `serial`.
    async fn stored(&self, name: &str, serial: u32) -> Option<Snapshot> {
        let info = self.store.info(name).await.ok()?;
        if info.deleted || info.metadata.get(META_SERIAL) != Some(&serial.to_string()) {
            return None;
        }
        let mut object = self.store.get(name).await.ok()?;
        let mut bytes = Vec::with_capacity(info.size);
        object.read_to_end(&mut bytes).await.ok()?;
        match zonefleet_wire::decode(&bytes).ok()? {
            Message::Snapshot(snapshot) if snapshot.serial == serial => Some(snapshot),
            _ => None,
        }
    }

    async fn put_snapshot(
        &self,
        name: &str,
        snapshot: &Snapshot,
        published_at: u64,
    ) -> Result<(), PublishError> {
        let bytes = snapshot.encode().map_err(failed("encoding"))?;
        let mut metadata = HashMap::from([
            (META_SERIAL.to_owned(), snapshot.serial.to_string()),
            (
                META_DIGEST.to_owned(),
                zonefleet_wire::hex(&snapshot.digest),
            ),
            (META_PUBLISHED_AT.to_owned(), published_at.to_string()),
        ]);
        if let Some(key) = &self.settings.key {
            metadata.insert(SIGNATURE.to_owned(), key.sign(name, &bytes));
        }
        let meta = ObjectMetadata {
            name: name.to_owned(),
            metadata,
            ..Default::default()
        };
        self.store
            .put(meta, &mut bytes.as_slice())
            .await
            .map_err(failed("storing the snapshot"))?;
        Ok(())
    }

    async fn publish_event(
        &self,
        origin: &str,
        message_id: Option<String>,
        payload: Vec<u8>,
        published_at: u64,
    ) -> Result<(), PublishError> {
        let mut headers = HeaderMap::new();
        if let Some(id) = message_id {
            headers.insert("Nats-Msg-Id", id.as_str());
        }
        headers.insert(
            EventHeaders::PUBLISHED_AT,
            published_at.to_string().as_str(),
        );
        let subject = self.layout.event_subject(origin);
        if let Some(key) = &self.settings.key {
            headers.insert(SIGNATURE, key.sign(&subject, &payload).as_str());
        }
        let expected = lock(&self.sequences).get(&subject).copied();
        if let Some(sequence) = expected {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                sequence.to_string().as_str(),
            );
        }
        let acked = match self
            .jetstream
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
        {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut sequences = lock(&self.sequences);
        match acked {
            Ok(ack) => {
                sequences.insert(subject, ack.sequence);
                Ok(())
            }
            Err(e) => {
                // Someone else may have written this zone's events (a deposed or new
                // leader): forget what this publisher believed, and let the retry start
                // from fresh state.
                sequences.remove(&subject);
                drop(sequences);
                self.forget(&self.layout.object_name(origin));
                Err(failed("publishing the event")(e))
            }
        }
    }

    /// Publishes a zone's access document unless the last one on its subject has the same
    /// digest.
    async fn publish_access_document(&self, access: &ZoneAccess) -> Result<(), PublishError> {
        let key = self.settings.key.as_ref();
        let subject = self.layout.access_subject(&access.origin);
        let digest = access.digest(key);
        let published = match self.access.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message
                .headers
                .get(ACCESS_DIGEST)
                .map(|d| d.as_str() == digest),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(failed("reading the access stream")(e)),
        };
        if published == Some(true) {
            return Ok(());
        }
        let payload = access.seal(key);
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_DIGEST, digest.as_str());
        if let Some(key) = key {
            headers.insert(SIGNATURE, key.sign(&subject, &payload).as_str());
        }
        self.jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(failed("publishing the access document"))?
            .await
            .map_err(failed("publishing the access document"))?;
        tracing::info!(zone = %access.origin, rules = access.transfer.len(),
            keys = access.keys.len(), "published access document");
        Ok(())
    }

    /// The event for a version: a delta if the previous version is known and the delta is
    /// small, the snapshot if it is small, an announcement otherwise.
    fn event_for(
        &self,
        previous: Option<&Snapshot>,
        snapshot: &Snapshot,
    ) -> Result<Vec<u8>, PublishError> {
        let encoding = |e: zonefleet_wire::WireError| failed("encoding")(e);
        if let Some(previous) = previous {
            let delta = Delta::between(previous, snapshot)
                .encode()
                .map_err(encoding)?;
            if delta.len() <= self.settings.inline_limit {
                return Ok(delta);
            }
        } else {
            let whole = snapshot.encode().map_err(encoding)?;
            if whole.len() <= self.settings.inline_limit {
                return Ok(whole);
            }
        }
        Marker {
            origin: snapshot.origin.clone(),
            serial: snapshot.serial,
            digest: snapshot.digest.clone(),
        }
        .encode_announce()
        .map_err(encoding)
    }

    async fn publish_version(&self, version: &ZoneVersion) -> Result<(), PublishError> {
        let origin = version.content.origin.to_string();
        let name = self.layout.object_name(&origin);
        let snapshot = Arc::new(version.content.snapshot(version.serial));
        let cached = lock(&self.last).get(&name).cloned();
        let previous = match (version.previous_serial, cached) {
            (Some(serial), Some(cached)) if cached.serial == serial => Some(cached),
            (Some(serial), _) => self.stored(&name, serial).await.map(Arc::new),
            (None, _) => None,
        };
        let published_at = zonefleet_nats::unix_millis();
        // The snapshot first: an event may send pods to it.
        self.put_snapshot(&name, &snapshot, published_at).await?;
        let event = self.event_for(previous.as_deref(), &snapshot)?;
        let id = format!("{name}@{}", version.serial);
        self.publish_event(&origin, Some(id), event, published_at)
            .await?;
        lock(&self.confirmed).insert(name.clone(), (snapshot.serial, snapshot.digest.clone()));
        lock(&self.last).insert(name, snapshot);
        Ok(())
    }
}

impl ZonePublisher for NatsPublisher {
    fn publish<'a>(&'a self, version: &'a ZoneVersion) -> Publishing<'a> {
        Box::pin(self.publish_version(version))
    }

    fn ensure<'a>(&'a self, version: &'a ZoneVersion) -> Publishing<'a> {
        Box::pin(async move {
            let name = self.layout.object_name(&version.content.origin.to_string());
            let digest = version.content.digest.to_vec();
            let known = lock(&self.confirmed)
                .get(&name)
                .is_some_and(|(serial, d)| *serial == version.serial && *d == digest);
            if known {
                return Ok(());
            }
            // A retraction deletes the object, but its info (and metadata) stay readable,
            // marked deleted: that is no version at all.
            let stored = match self.store.info(&name).await {
                Ok(info) => {
                    !info.deleted
                        && info.metadata.get(META_SERIAL) == Some(&version.serial.to_string())
                        && info.metadata.get(META_DIGEST) == Some(&zonefleet_wire::hex(&digest))
                }
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => false,
                Err(e) => return Err(failed("reading the snapshot bucket")(e)),
            };
            if stored {
                lock(&self.confirmed).insert(name, (version.serial, digest));
                return Ok(());
            }
            tracing::warn!(zone = %version.zone, serial = version.serial,
                "the published version is missing from NATS; publishing it again");
            let again = ZoneVersion {
                previous_serial: None,
                ..version.clone()
            };
            self.publish_version(&again).await
        })
    }

    fn current<'a>(&'a self, domain: &'a str) -> Publishing<'a, Option<(u32, String)>> {
        Box::pin(async move {
            let name = self.layout.object_name(domain);
            match self.store.info(&name).await {
                Ok(info) if !info.deleted => Ok(info
                    .metadata
                    .get(META_SERIAL)
                    .and_then(|serial| serial.parse().ok())
                    .zip(info.metadata.get(META_DIGEST).cloned())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
                Err(e) => Err(failed("reading the snapshot bucket")(e)),
            }
        })
    }

    fn publish_access<'a>(&'a self, access: &'a ZoneAccess) -> Publishing<'a> {
        Box::pin(self.publish_access_document(access))
    }

    fn retract<'a>(&'a self, zone: &'a ObjectKey, domain: &'a str) -> Publishing<'a> {
        Box::pin(async move {
            let name = self.layout.object_name(domain);
            match self.store.delete(&name).await {
                Ok(()) => {}
                Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => {}
                Err(e) => return Err(failed("deleting the snapshot")(e)),
            }
            let origin = hickory_proto::rr::Name::from_ascii(&name)
                .map_err(|e| PublishError::new(format!("zone {zone}"), e))?;
            let marker = Marker {
                origin,
                serial: 0,
                digest: Vec::new(),
            }
            .encode_retract()
            .map_err(failed("encoding"))?;
            // No message ID: a zone deleted, re-created and deleted again is retracted again.
            self.publish_event(&name, None, marker, zonefleet_nats::unix_millis())
                .await?;
            self.forget(&name);
            self.access
                .purge()
                .filter(self.layout.access_subject(&name))
                .await
                .map_err(failed("purging the access document"))?;
            Ok(())
        })
    }
}
