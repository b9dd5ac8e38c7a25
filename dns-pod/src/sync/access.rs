//! Following the access stream: the latest access document of every zone (transfer rules
//! and TSIG keys), kept in memory. An ordered consumer starts from the last message per
//! subject and follows; it starts over after any failure, and the stream keeps only the
//! last document per zone, so starting over is cheap and misses nothing.

use std::sync::Arc;

use async_nats::{
    Client,
    jetstream::{
        self,
        consumer::{DeliverPolicy, push},
    },
};
use futures::StreamExt;
use tracing::{info, warn};
use zonefleet_nats::{Layout, MessageKey, SIGNATURE, ZoneAccess};

use crate::{
    access::{AccessStore, ServedAccess},
    metrics::SyncMetrics,
};

/// Follows the access stream into an [`AccessStore`].
#[derive(Clone, Debug)]
pub struct AccessFollower {
    /// The NATS connection.
    pub client: Client,
    /// The names under the prefix.
    pub layout: Layout,
    /// If set, documents must be signed, and their secrets sealed, with this key.
    pub key: Option<MessageKey>,
    /// Where the documents go.
    pub store: Arc<AccessStore>,
    /// Sync metrics (rejected documents count as rejected messages).
    pub metrics: Arc<SyncMetrics>,
}

/// Why a document was not taken.
#[derive(Debug, thiserror::Error)]
enum DocumentError {
    #[error("unauthenticated: {0}")]
    Unauthenticated(zonefleet_nats::SignatureError),
    #[error("malformed access document: {0}")]
    Unreadable(zonefleet_nats::AccessError),
    #[error("invalid access document: {0}")]
    Invalid(crate::access::AccessBuildError),
    #[error("the access document on {subject} is about the zone {zone}")]
    WrongSubject { subject: String, zone: String },
}

impl DocumentError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Unreadable(_) | Self::Invalid(_) => "malformed",
            Self::WrongSubject { .. } => "wrong_subject",
        }
    }
}

impl AccessFollower {
    /// Follows forever, starting over with a backoff when the stream is missing (no
    /// operator has run yet) or the consumer fails.
    pub async fn run(self) {
        super::follow_forever("following the access stream", || self.follow()).await
    }

    async fn follow(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let jetstream = jetstream::new(self.client.clone());
        let stream = jetstream.get_stream(self.layout.access_stream()).await?;
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: self.layout.access_subjects(),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        info!(
            stream = self.layout.access_stream(),
            "following the access stream"
        );
        while let Some(message) = messages.next().await {
            let message = message?;
            let subject = message.subject.as_str();
            let signature = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(SIGNATURE))
                .map(|value| value.as_str());
            match self.take(subject, &message.payload, signature) {
                Ok(zone) => info!(%zone, "access document applied"),
                Err(error) => {
                    self.metrics.rejected(error.reason());
                    warn!(subject, %error, "access document refused; the zone keeps the access it had");
                }
            }
        }
        Err("the access consumer ended".into())
    }

    /// Applies one document; returns its zone.
    fn take(
        &self,
        subject: &str,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<String, DocumentError> {
        if let Some(key) = &self.key {
            key.verify(subject, payload, signature)
                .map_err(DocumentError::Unauthenticated)?;
        }
        let document =
            ZoneAccess::open(payload, self.key.as_ref()).map_err(DocumentError::Unreadable)?;
        if self.layout.access_subject(&document.origin) != subject {
            return Err(DocumentError::WrongSubject {
                subject: subject.to_owned(),
                zone: document.origin,
            });
        }
        let (origin, access) =
            ServedAccess::from_document(&document).map_err(DocumentError::Invalid)?;
        self.store.set(origin, Some(access));
        Ok(document.origin)
    }
}
