//! The Zone reconcile against a mocked API server, as kube-rs's controller-rs tests its
//! reconciler (`fixtures.rs`): the client talks to a `tower-test` mock, and a script
//! expects each HTTP request in order (method and path), looks at its body and answers it.
//! The publisher is a test double. Nothing here runs a cluster or NATS.
//!
//! Covered: a fenced status write that gets 409 Conflict (retried with the fresh
//! resourceVersion while the Zone's serial and spec are unchanged, failed and requeued
//! otherwise, given up after five attempts); the finalizer on a deleted Zone (the domain
//! retracted and the finalizer removed, or nothing retracted when a successor owns the
//! domain); and a failed publish (the status says why, and the reconcile fails).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use kube::{
    Client,
    client::Body,
    core::DeserializeGuard,
    runtime::{
        controller::Action,
        events::{Recorder, Reporter},
        reflector::{self, Store},
        watcher,
    },
};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use zonefleet_api::Zone;
use zonefleet_operator::{
    controller::{self, Context, PublishedVersion, ZONE_FINALIZER, index::RecordIndex},
    error::Error,
    fleet::FleetView,
    metrics::Metrics,
    publish::{PublishError, ZonePublisher, ZoneVersion},
    zone::ObjectKey,
};

type ApiHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const ZONES: &str = "/apis/dns.zonefleet.io/v1alpha1/namespaces/dns/zones";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/dns/events";

// ---- The publisher doubles ----

/// What a [`Recording`] publisher was asked to do.
#[derive(Debug, Default)]
struct Calls {
    published: Vec<(ObjectKey, u32)>,
    retracted: Vec<(ObjectKey, String)>,
}

/// A publisher that succeeds and remembers each call.
#[derive(Debug, Default)]
struct Recording(Mutex<Calls>);

impl Recording {
    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.0.lock().expect("the calls")
    }
}

impl ZonePublisher for Recording {
    fn publish<'a>(&'a self, version: &'a ZoneVersion) -> BoxFuture<'a, Result<(), PublishError>> {
        self.calls()
            .published
            .push((version.zone.clone(), version.serial));
        Box::pin(async { Ok(()) })
    }

    fn retract<'a>(
        &'a self,
        zone: &'a ObjectKey,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        self.calls()
            .retracted
            .push((zone.clone(), domain.to_owned()));
        Box::pin(async { Ok(()) })
    }
}

/// A publisher whose publishes fail as a lost NATS connection makes them fail.
#[derive(Debug)]
struct Failing;

impl ZonePublisher for Failing {
    fn publish<'a>(&'a self, _: &'a ZoneVersion) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async {
            Err(PublishError::new(
                "storing the snapshot",
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"),
            ))
        })
    }

    fn retract<'a>(
        &'a self,
        _: &'a ObjectKey,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async { panic!("nothing is retracted here") })
    }
}

// ---- The mocked API server ----

/// How the API server answers a request, from its body: status and JSON.
type Answer = Box<dyn FnOnce(&Value) -> (StatusCode, Value) + Send>;

/// One request the API server expects, and its answer.
struct Expect {
    method: Method,
    path: String,
    answer: Answer,
}

impl Expect {
    fn new(
        method: Method,
        path: impl Into<String>,
        answer: impl FnOnce(&Value) -> (StatusCode, Value) + Send + 'static,
    ) -> Self {
        Self {
            method,
            path: path.into(),
            answer: Box::new(answer),
        }
    }
}

/// A request as the API server saw it.
#[derive(Debug)]
struct Seen {
    query: String,
    content_type: String,
    body: Value,
}

/// Answers the script's requests in order, checking each one's method and path; hands back
/// what it saw and the handle (to check that nothing more came).
fn serve(
    mut handle: ApiHandle,
    script: Vec<Expect>,
) -> tokio::task::JoinHandle<(Vec<Seen>, ApiHandle)> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for (i, expect) in script.into_iter().enumerate() {
            let (request, send) =
                tokio::time::timeout(Duration::from_secs(10), handle.next_request())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("request {i} ({} {}) never came", expect.method, expect.path)
                    })
                    .expect("the client is gone");
            let (parts, body) = request.into_parts();
            assert_eq!(
                (&parts.method, parts.uri.path()),
                (&expect.method, expect.path.as_str()),
                "request {i}"
            );
            let bytes = body.collect_bytes().await.expect("the request body");
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("a JSON request body")
            };
            let (status, answer) = (expect.answer)(&body);
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(answer.to_string().into_bytes()))
                .expect("a response");
            send.send_response(response);
            seen.push(Seen {
                query: parts.uri.query().unwrap_or_default().to_owned(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body,
            });
        }
        (seen, handle)
    })
}

/// A Zone's JSON as the API server would return it: `zone` with `status` and a new
/// resourceVersion.
fn zone_with(zone: &Value, status: &Value, resource_version: &str) -> Value {
    let mut zone = zone.clone();
    zone["metadata"]["resourceVersion"] = json!(resource_version);
    zone["status"] = status.clone();
    zone
}

/// The answer to a status patch: the Zone with the status it carries.
fn status_written(
    zone: &Value,
    resource_version: &'static str,
) -> impl FnOnce(&Value) -> (StatusCode, Value) + Send + 'static {
    let zone = zone.clone();
    move |patch: &Value| {
        (
            StatusCode::OK,
            zone_with(&zone, &patch["status"], resource_version),
        )
    }
}

/// The API server's 409 for a write on a stale resourceVersion.
fn conflict(_: &Value) -> (StatusCode, Value) {
    (
        StatusCode::CONFLICT,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Operation cannot be fulfilled on zones.dns.zonefleet.io \"z\": the object has been modified; please apply your changes to the latest version and try again",
            "reason": "Conflict", "code": 409,
        }),
    )
}

/// An Event created: the API server returns it.
fn event_created(event: &Value) -> (StatusCode, Value) {
    (StatusCode::CREATED, event.clone())
}

fn status_patch(zone: &Value, resource_version: &'static str) -> Expect {
    Expect::new(
        Method::PATCH,
        format!("{ZONES}/z/status"),
        status_written(zone, resource_version),
    )
}

fn event_post() -> Expect {
    Expect::new(Method::POST, EVENTS, event_created)
}

// ---- The operator's side ----

/// A Zone `z` for `z.example` in namespace `dns` that carries the finalizer.
fn zone_json() -> Value {
    json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
        "metadata": {
            "name": "z", "namespace": "dns", "uid": "uid-z", "resourceVersion": "1",
            "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [ZONE_FINALIZER],
        },
        "spec": {
            "domain": "z.example",
            "nameServers": [{"name": "ns1.z.example", "addresses": ["192.0.2.53"]}],
        },
    })
}

fn zone_of(json: &Value) -> Zone {
    serde_json::from_value(json.clone()).expect("a Zone")
}

fn key() -> ObjectKey {
    ObjectKey {
        namespace: "dns".into(),
        name: "z".into(),
    }
}

/// A store holding `zones`.
fn zone_store(zones: &[&Value]) -> Store<DeserializeGuard<Zone>> {
    let (store, mut writer) = reflector::store();
    for zone in zones {
        writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(zone_of(zone)))));
    }
    store
}

/// What a test holds on to: the context, and the channels it needs kept open.
struct Operator {
    ctx: Arc<Context>,
    _leading: watch::Sender<bool>,
    _triggers: mpsc::UnboundedReceiver<ObjectKey>,
}

/// A leading operator's context over the mocked API server, with the Zone store holding
/// `zones` and no Records; the fleet checker is off.
fn operator(client: Client, publisher: Arc<dyn ZonePublisher>, zones: &[&Value]) -> Operator {
    let (leading_tx, leading) = watch::channel(true);
    let (zone_triggers, triggers) = mpsc::unbounded_channel();
    let reporter = Reporter {
        controller: "zonefleet-operator".into(),
        instance: Some("test".into()),
    };
    let ctx = Context {
        client: client.clone(),
        publisher,
        metrics: Arc::new(Metrics::register(&mut Registry::default())),
        recorder: Recorder::new(client, reporter.clone()),
        reporter,
        records: reflector::store().0,
        zones: zone_store(zones),
        leading,
        record_index: Arc::new(std::sync::RwLock::new(RecordIndex::default())),
        published: Mutex::new(HashMap::new()),
        tallies: Mutex::new(HashMap::new()),
        fleet_problems: Mutex::new(HashMap::new()),
        zone_statuses: Mutex::new(HashMap::new()),
        assemblies: Mutex::new(HashMap::new()),
        fleet_views: Mutex::new(HashMap::new()),
        publish_notices: None,
        zone_triggers,
        claims_seen: Mutex::new(HashMap::new()),
        secondaries: None,
        secondaries_statuses: Mutex::new(HashMap::new()),
    };
    Operator {
        ctx: Arc::new(ctx),
        _leading: leading_tx,
        _triggers: triggers,
    }
}

/// Reconciles `zone` against `script`; returns the result and what the API server saw.
async fn reconcile(
    zone: &Value,
    publisher: Arc<dyn ZonePublisher>,
    store: &[&Value],
    script: Vec<Expect>,
) -> (Result<Action, Error>, Vec<Seen>, Operator) {
    reconcile_seeded(zone, publisher, store, script, |_| {}).await
}

/// [`reconcile`], with what the operator knows before (`seed` fills the context in).
async fn reconcile_seeded(
    zone: &Value,
    publisher: Arc<dyn ZonePublisher>,
    store: &[&Value],
    script: Vec<Expect>,
    seed: impl FnOnce(&Context),
) -> (Result<Action, Error>, Vec<Seen>, Operator) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let operator = operator(Client::new(service, "default"), publisher, store);
    seed(&operator.ctx);
    let server = serve(handle, script);
    let guard = Arc::new(DeserializeGuard(Ok(zone_of(zone))));
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        controller::zone::reconcile(guard, operator.ctx.clone()),
    )
    .await
    .expect("the reconcile ends");
    let (seen, mut handle) = server
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    if let Ok(Some(request)) =
        tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await
    {
        panic!(
            "an unexpected request: {} {}",
            request.0.method(),
            request.0.uri()
        );
    }
    (result, seen, operator)
}

/// The condition of `kind` in a status patch's body: (status, reason, message).
fn condition(patch: &Value, kind: &str) -> (String, String, String) {
    let condition = patch["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {patch}"));
    let text = |field: &str| condition[field].as_str().unwrap_or_default().to_owned();
    (text("status"), text("reason"), text("message"))
}

fn fenced_at(patch: &Value) -> Option<&str> {
    patch["metadata"]["resourceVersion"].as_str()
}

// ---- 1. The fenced status write and 409 Conflict ----

#[tokio::test]
async fn a_conflicting_status_write_is_retried_with_the_fresh_resource_version() {
    let zone = zone_json();
    let publisher = Arc::new(Recording::default());
    let fresh = zone_with(&zone, &Value::Null, "2");
    let script = vec![
        // "Publishing" on the resourceVersion read: someone else wrote meanwhile.
        Expect::new(Method::PATCH, format!("{ZONES}/z/status"), conflict),
        // The Zone is read again: same serial, same generation, so the write may go on.
        Expect::new(Method::GET, format!("{ZONES}/z/status"), move |_| {
            (StatusCode::OK, fresh)
        }),
        status_patch(&zone, "3"),
        event_post(),
        status_patch(&zone, "4"),
    ];
    let (result, seen, operator) = reconcile(&zone, publisher.clone(), &[&zone], script).await;
    assert_eq!(result.unwrap(), Action::await_change());

    let published = publisher.calls().published.clone();
    assert_eq!(published.len(), 1, "{published:?}");
    let (published_key, serial) = published[0].clone();
    assert_eq!(published_key, key());
    // The first write and its retry: server-side apply, fenced, the retry on the
    // resourceVersion the Zone was read again with.
    for write in [&seen[0], &seen[2]] {
        assert!(
            write.query.contains("fieldManager=zonefleet-operator"),
            "{}",
            write.query
        );
        assert!(write.query.contains("force=true"), "{}", write.query);
        assert_eq!(write.content_type, "application/apply-patch+yaml");
        assert_eq!(
            condition(&write.body, "Ready"),
            (
                "False".into(),
                "Progressing".into(),
                format!("publishing serial {serial}")
            )
        );
    }
    assert_eq!(fenced_at(&seen[0].body), Some("1"));
    assert_eq!(fenced_at(&seen[2].body), Some("2"));
    assert_eq!(seen[3].body["reason"], "Published");
    // The final status records the serial, fenced on the status just written.
    let last = &seen[4].body;
    assert_eq!(fenced_at(last), Some("3"));
    assert_eq!(last["status"]["serial"], serial);
    assert_eq!(condition(last, "Ready").1, "Published");
    assert_eq!(
        operator
            .ctx
            .published
            .lock()
            .unwrap()
            .get(&key())
            .map(|p| p.serial),
        Some(serial)
    );
}

#[tokio::test]
async fn a_conflict_with_a_newer_serial_fails_the_reconcile_which_is_requeued() {
    let zone = zone_json();
    let publisher = Arc::new(Recording::default());
    // Another replica recorded serial 7 meanwhile: this one acts on stale state.
    let newer = zone_with(
        &zone,
        &json!({"serial": 7, "digest": "ab", "recordCount": 3}),
        "2",
    );
    let script = vec![
        Expect::new(Method::PATCH, format!("{ZONES}/z/status"), conflict),
        Expect::new(Method::GET, format!("{ZONES}/z/status"), move |_| {
            (StatusCode::OK, newer)
        }),
    ];
    let (result, _, operator) = reconcile(&zone, publisher.clone(), &[&zone], script).await;
    let error = result.unwrap_err();
    assert_eq!(error.category(), "conflict");
    assert!(
        publisher.calls().published.is_empty(),
        "nothing is published on stale state"
    );
    assert_eq!(
        controller::error_policy(Arc::new(zone_of(&zone)), &error, operator.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn a_status_write_that_keeps_conflicting_gives_up_after_five_attempts() {
    let zone = zone_json();
    let mut script = Vec::new();
    for attempt in 1..=5 {
        script.push(Expect::new(
            Method::PATCH,
            format!("{ZONES}/z/status"),
            conflict,
        ));
        if attempt < 5 {
            let fresh = zone_with(&zone, &Value::Null, &format!("{}", attempt + 1));
            script.push(Expect::new(
                Method::GET,
                format!("{ZONES}/z/status"),
                move |_| (StatusCode::OK, fresh),
            ));
        }
    }
    let publisher = Arc::new(Recording::default());
    let (result, seen, _) = reconcile(&zone, publisher.clone(), &[&zone], script).await;
    assert_eq!(result.unwrap_err().category(), "conflict");
    let fences: Vec<Option<&str>> = seen
        .iter()
        .filter(|s| !s.body.is_null())
        .map(|s| fenced_at(&s.body))
        .collect();
    assert_eq!(
        fences,
        [Some("1"), Some("2"), Some("3"), Some("4"), Some("5")]
    );
    assert!(publisher.calls().published.is_empty());
}

// ---- 2. The finalizer of a deleted Zone ----

/// The Zone being deleted, after it served serial 3.
fn deleted_zone() -> Value {
    let mut zone = zone_json();
    zone["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    zone["status"] = json!({"serial": 3, "digest": "ab", "recordCount": 3});
    zone
}

/// The JSON patch that removes the finalizer, and the Zone without it.
fn finalizer_removed(zone: &Value) -> Expect {
    let mut gone = zone.clone();
    gone["metadata"]["finalizers"] = json!([]);
    Expect::new(Method::PATCH, format!("{ZONES}/z"), move |_| {
        (StatusCode::OK, gone)
    })
}

fn assert_removes_the_finalizer(seen: &Seen) {
    assert_eq!(seen.content_type, "application/json-patch+json");
    assert_eq!(
        seen.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": ZONE_FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ])
    );
}

#[tokio::test]
async fn a_deleted_zone_is_retracted_and_its_finalizer_removed() {
    let zone = deleted_zone();
    let publisher = Arc::new(Recording::default());
    let script = vec![event_post(), finalizer_removed(&zone)];
    // What the operator knew of the Zone, which it forgets.
    let seed = |ctx: &Context| {
        ctx.published.lock().unwrap().insert(
            key(),
            PublishedVersion {
                serial: 3,
                digest: "ab".into(),
            },
        );
        ctx.fleet_problems
            .lock()
            .unwrap()
            .insert(key(), "pod dns-b still serves serial 2".into());
        ctx.fleet_views.lock().unwrap().insert(
            key(),
            FleetView {
                serial: 3,
                servers: Default::default(),
                lowest: Some(3),
                detail: String::new(),
                problems: None,
            },
        );
    };
    let (result, seen, operator) =
        reconcile_seeded(&zone, publisher.clone(), &[&zone], script, seed).await;
    let ctx = &operator.ctx;
    assert_eq!(result.unwrap(), Action::await_change());
    assert_eq!(
        publisher.calls().retracted,
        [(key(), "z.example".to_owned())]
    );
    assert_eq!(seen[0].body["reason"], "Retracted");
    assert_eq!(seen[0].body["note"], "zone z.example retracted");
    assert_removes_the_finalizer(&seen[1]);
    assert!(ctx.published.lock().unwrap().is_empty());
    assert!(ctx.fleet_problems.lock().unwrap().is_empty());
    assert!(ctx.fleet_views.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_zone_whose_domain_has_a_successor_retracts_nothing() {
    let zone = deleted_zone();
    let mut successor = zone_json();
    successor["metadata"]["name"] = json!("z-next");
    successor["metadata"]["uid"] = json!("uid-z-next");
    successor["metadata"]["creationTimestamp"] = json!("2026-01-01T12:00:00Z");
    let publisher = Arc::new(Recording::default());
    let script = vec![finalizer_removed(&zone)];
    let (result, seen, _) = reconcile(&zone, publisher.clone(), &[&zone, &successor], script).await;
    assert_eq!(result.unwrap(), Action::await_change());
    let calls = publisher.calls();
    assert!(
        calls.retracted.is_empty(),
        "the successor keeps the domain: {:?}",
        calls.retracted
    );
    assert_removes_the_finalizer(&seen[0]);
}

// ---- 3. A failed publish ----

#[tokio::test]
async fn a_failed_publish_is_in_the_status_and_fails_the_reconcile() {
    let zone = zone_json();
    let script = vec![
        status_patch(&zone, "2"),
        status_patch(&zone, "3"),
        event_post(),
    ];
    let (result, seen, operator) = reconcile(&zone, Arc::new(Failing), &[&zone], script).await;
    let error = result.unwrap_err();
    assert!(matches!(error, Error::Publish(_)), "{error:?}");
    assert_eq!(error.category(), "publish");
    // The reconcile error, as the status and the Event tell it.
    let why = "publishing: storing the snapshot: connection refused";
    assert_eq!(error.to_string(), why);

    // "Publishing", then the failure: not fenced (it records no serial), Ready False with
    // the reason and the error.
    let (_, reason, message) = condition(&seen[0].body, "Ready");
    assert_eq!(reason, "Progressing");
    let serial: u32 = message
        .strip_prefix("publishing serial ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    let failed = &seen[1].body;
    assert_eq!(fenced_at(failed), None);
    assert_eq!(
        condition(failed, "Ready"),
        (
            "False".into(),
            "PublishFailed".into(),
            format!("serial {serial} could not be published: {why}")
        )
    );
    assert_eq!(condition(failed, "Reconciling").1, "PublishFailed");
    assert!(failed["status"]["serial"].is_null(), "{failed}");
    assert_eq!(seen[2].body["reason"], "PublishFailed");
    assert_eq!(seen[2].body["note"], why);
    assert_eq!(seen[2].body["type"], "Warning");
    assert!(operator.ctx.published.lock().unwrap().is_empty());
    // Transient: tried again.
    assert_eq!(
        controller::error_policy(Arc::new(zone_of(&zone)), &error, operator.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
}
