//! A version the pod cannot decode is refused, and later versions still apply: a follower
//! against a real nats-server (the one `e2e/tools.sh` builds), with its admin endpoint.
//!
//! It needs the nats-server binary: `e2e/setup.sh` builds it (`make test` runs setup first),
//! and `NATS_SERVER` may name another. Without it the test fails; it never passes unrun.

mod common;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    object_store::{self, ObjectMetadata, ObjectStore},
    stream,
};
use hickory_proto::rr::{Name, RecordType};
use prometheus_client::{encoding::text::encode, registry::Registry};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};
use zonefleet_dns_pod::{
    admin::{self, AdminState, Readiness},
    metrics::SyncMetrics,
    sync::{Follower, RefusalBook},
    zone_files,
    zones::ZoneStore,
};
use zonefleet_nats::{
    Layout, META_DIGEST, META_SERIAL, RefusedVersion, ResyncReply, ResyncRequest,
};
use zonefleet_wire::{Delta, Snapshot};

use common::nats::{Nats, nats_server_binary};

/// How long a step may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

fn origin() -> Name {
    Name::from_ascii("example.com.").expect("a valid name")
}

/// Version `serial` of `example.com.`, with `extra` records.
fn snapshot(serial: u32, extra: &str) -> Snapshot {
    let text = format!(
        "$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n{extra}"
    );
    zone_files::parse(&text, origin(), None).expect("the test zone parses")
}

/// A version hickory-proto 0.26 encodes but cannot decode back: a CAA record with a tag it
/// does not know ("incorrect rdata length").
fn undecodable(serial: u32) -> Snapshot {
    snapshot(serial, "@ IN CAA 0 bogus-tag \"x\"\n")
}

/// Puts `snapshot` in the store, as the operator does.
async fn put(store: &ObjectStore, layout: &Layout, snapshot: &Snapshot) {
    let bytes = snapshot.encode().expect("the snapshot encodes");
    let meta = ObjectMetadata {
        name: layout.object_name(&snapshot.origin.to_string()),
        metadata: HashMap::from([
            (META_SERIAL.to_owned(), snapshot.serial.to_string()),
            (
                META_DIGEST.to_owned(),
                zonefleet_wire::hex(&snapshot.digest),
            ),
        ]),
        ..Default::default()
    };
    store
        .put(meta, &mut bytes.as_slice())
        .await
        .expect("the snapshot is stored");
}

/// Publishes an encoded event and waits for JetStream to store it.
async fn publish(js: &jetstream::Context, layout: &Layout, payload: Vec<u8>) {
    js.publish(layout.event_subject("example.com."), payload.into())
        .await
        .expect("the event is published")
        .await
        .expect("the event is stored");
}

/// Waits until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A GET of the admin endpoint; the body.
async fn get(admin: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(admin).await.expect("the admin endpoint");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

async fn refused(admin: SocketAddr) -> Vec<RefusedVersion> {
    serde_json::from_str(&get(admin, "/refused").await).expect("/refused is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_version_is_refused_and_later_versions_apply() {
    let binary = nats_server_binary()
        .expect("no nats-server binary: run e2e/setup.sh (it builds one), or set NATS_SERVER");
    // The bad version really is what the pod meets: it encodes, and does not decode.
    let bad = undecodable(2);
    let bad_bytes = bad.encode().unwrap();
    assert!(zonefleet_wire::decode(&bad_bytes).is_err());

    let nats = Nats::start(&binary, "refusals").await;
    let client = async_nats::connect(&nats.url).await.unwrap();
    let layout = Layout::new("zftest").unwrap();
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: layout.event_stream(),
        subjects: vec![layout.event_subjects()],
        ..Default::default()
    })
    .await
    .unwrap();
    let store = js
        .create_object_store(object_store::Config {
            bucket: layout.snapshot_bucket(),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut registry = Registry::default();
    let metrics = Arc::new(SyncMetrics::register(&mut registry));
    let zones = Arc::new(ZoneStore::new());
    let refusals = Arc::new(RefusalBook::new());
    let readiness = Readiness::new(admin::WAITING);
    let registry = Arc::new(registry);
    let (admin_address, admin) = admin::bind(
        ([127, 0, 0, 1], 0).into(),
        AdminState {
            registry: Arc::clone(&registry),
            readiness: readiness.clone(),
            zones: Arc::clone(&zones),
            refusals: Arc::clone(&refusals),
        },
    )
    .await
    .unwrap();
    let admin = tokio::spawn(admin);

    // Version 1, in the store before the pod starts.
    put(&store, &layout, &snapshot(1, "")).await;
    let follower = Follower {
        client: client.clone(),
        layout: layout.clone(),
        pod: "pod-0".into(),
        zones: Arc::clone(&zones),
        metrics: Arc::clone(&metrics),
        local: None,
        readiness: readiness.clone(),
        connected: Arc::new(Notify::new()),
        key: None,
        refusals: Arc::clone(&refusals),
    };
    let following = tokio::spawn(follower.run());
    let serial = || zones.load().get(&origin()).map(|zone| zone.serial());
    eventually("version 1 served", || serial() == Some(1)).await;

    // Version 2 does not decode: in the store, and in an event.
    put(&store, &layout, &bad).await;
    publish(&js, &layout, bad_bytes).await;
    eventually("version 2 refused", || !refusals.snapshot().is_empty()).await;
    assert_eq!(serial(), Some(1), "the previous version is still served");
    let listed = refused(admin_address).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].zone, "example.com.");
    assert_eq!(listed[0].serial, Some(2));
    assert_eq!(listed[0].reason, "malformed");
    assert!(
        listed[0].error.contains("rdata length"),
        "{}",
        listed[0].error
    );
    assert!(listed[0].at_millis > 0);
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("zonefleet_dns_sync_rejected_messages_total{reason=\"malformed\"} 1"),
        "{text}"
    );
    assert!(text.contains("zonefleet_dns_refused_zones 1"), "{text}");

    // A re-sync of the zone fetches the bad snapshot again: refused again, and reported.
    let request = serde_json::to_vec(&ResyncRequest {
        zones: vec!["example.com.".into()],
    })
    .unwrap();
    let reply = client
        .request(layout.resync_subject("pod-0"), request.into())
        .await
        .unwrap();
    let reply: ResyncReply = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply.zones.len(), 1);
    assert_eq!(reply.zones[0].serial, 1);
    assert_eq!(reply.errors.len(), 1, "{:?}", reply.errors);
    assert!(
        reply.errors[0].starts_with("example.com.: "),
        "{:?}",
        reply.errors
    );
    assert_eq!(reply.refused.len(), 1);
    assert_eq!(reply.refused[0].serial, Some(2));

    // Version 3 is good; its event is a delta from the refused version 2, which the pod
    // does not serve: it fetches the snapshot from the store.
    let good = snapshot(3, "www IN A 192.0.2.80\n");
    put(&store, &layout, &good).await;
    let soa = |snapshot: &Snapshot| {
        snapshot
            .records
            .iter()
            .filter(|record| record.record_type() == RecordType::SOA)
            .cloned()
            .collect::<Vec<_>>()
    };
    let delta = Delta {
        origin: origin(),
        from_serial: 2,
        serial: 3,
        digest: good.digest.clone(),
        removed: soa(&snapshot(2, "")),
        added: soa(&good),
    };
    publish(&js, &layout, delta.encode().unwrap()).await;
    eventually("version 3 served", || serial() == Some(3)).await;
    assert_eq!(zones.load().get(&origin()).unwrap().digest, good.digest);
    assert!(refused(admin_address).await.is_empty());
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    assert!(text.contains("zonefleet_dns_refused_zones 0"), "{text}");

    following.abort();
    admin.abort();
}
