//! Trustworthy zones end to end: who owns a domain (takeover, rename, child zones in other
//! namespaces), record values that round-trip to the pods or are refused with a reason,
//! `Ready` and `Programmed` that mean served, and Events and metrics that say what happened.
//!
//! Each test owns a small fleet (the fixture `zonefleet_e2e::dns_fleet::Fleet`): a NATS
//! server, an operator, and two dns-pods behind a Service. Every check of served data asks
//! every pod (with the tests' DNS client; the TXT checks with `dig`, to see the strings as a
//! real client shows them). The operators watch every namespace, so the tests of this file
//! run one at a time.

use std::{collections::BTreeSet, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, bail, ensure};
use hickory_proto::{op::ResponseCode, rr::RecordType};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Condition, jiff::Timestamp};
use kube::Api;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};
use tokio::{sync::Mutex, time::Instant};
use zonefleet_api::{Record, Zone};
use zonefleet_e2e::{
    dns::{self, Answer},
    dns_fleet::{self, Fleet, FleetSpec},
    harness::{events_about, wait_for_object, wait_until},
    operator::apply,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const PODS: [&str; 2] = ["dns-a", "dns-b"];
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn zone_manifest(name: &str, domain: &str, extra: Value) -> Value {
    let mut zone = json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
        "metadata": {"name": name},
        "spec": {
            "domain": domain,
            "nameServers": [{"name": format!("ns1.{}", domain.to_lowercase()),
                             "addresses": ["192.0.2.53"]}],
        },
    });
    if let (Some(spec), Some(extra)) = (zone["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    zone
}

fn record_manifest(name: &str, zone: &str, owner: &str, kind: &str, values: &[&str]) -> Value {
    json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
        "metadata": {"name": name},
        "spec": {"zoneRef": {"name": zone}, "name": owner, "type": kind, "values": values},
    })
}

fn condition<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == kind)
}

fn zone_condition<'a>(zone: &'a Zone, kind: &str) -> Option<&'a Condition> {
    zone.status
        .as_ref()
        .and_then(|s| condition(&s.conditions, kind))
}

fn record_condition<'a>(record: &'a Record, kind: &str) -> Option<&'a Condition> {
    record
        .status
        .as_ref()
        .and_then(|s| condition(&s.conditions, kind))
}

/// True if the condition has `status` and `reason` and its message contains `text`.
fn says(condition: &Condition, status: &str, reason: &str, text: &str) -> bool {
    condition.status == status && condition.reason == reason && condition.message.contains(text)
}

/// True if the condition `kind` has `status` (and, if given, `reason`).
fn zone_has(zone: &Zone, kind: &str, status: &str, reason: Option<&str>) -> bool {
    zone_condition(zone, kind)
        .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
}

fn record_has(record: &Record, kind: &str, status: &str, reason: Option<&str>) -> bool {
    record_condition(record, kind)
        .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
}

/// The second of a Zone's creationTimestamp.
fn created_second(zone: &Zone) -> anyhow::Result<i64> {
    Ok(zone
        .metadata
        .creation_timestamp
        .as_ref()
        .context("a creationTimestamp")?
        .0
        .as_second())
}

fn serial_of(zone: &Zone) -> Option<u32> {
    zone.status.as_ref().and_then(|s| s.serial)
}

/// Ready=True for the Zone's generation, with both pods counted.
fn zone_ready(zone: &Zone) -> bool {
    zone_condition(zone, "Ready")
        .is_some_and(|c| c.status == "True" && c.observed_generation == zone.metadata.generation)
        && zone
            .status
            .as_ref()
            .and_then(|s| s.servers.as_ref())
            .is_some_and(|s| s.summary == "2/2")
}

/// `dig +short`: the answer section's rdata, exactly as dig prints it. The TXT checks run dig
/// on purpose, to see the strings as a real client shows them.
async fn dig_short(server: SocketAddr, name: &str, kind: &str) -> anyhow::Result<Vec<String>> {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+norecurse", "+time=1", "+tries=2", "+short"])
        .arg(name)
        .arg(kind)
        .output()
        .await
        .context("running dig")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "dig {name} {kind} @{server}: {text}"
    );
    Ok(text.lines().map(str::to_owned).collect())
}

/// The character-strings of one TXT rdata as dig prints it: `"a" "b\"c\032"`.
fn txt_strings(line: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut strings = Vec::new();
    let mut bytes = line.bytes().peekable();
    loop {
        while bytes.next_if(|b| *b == b' ').is_some() {}
        match bytes.next() {
            None => return Ok(strings),
            Some(b'"') => {}
            Some(other) => bail!("unexpected {:?} in {line:?}", other as char),
        }
        let mut string = Vec::new();
        loop {
            match bytes.next().context("an unterminated string")? {
                b'"' => break,
                b'\\' => {
                    let first = bytes.next().context("a dangling escape")?;
                    if first.is_ascii_digit() {
                        let digits = [first, bytes.next().unwrap_or(0), bytes.next().unwrap_or(0)];
                        let value: u8 = std::str::from_utf8(&digits)?.parse()?;
                        string.push(value);
                    } else {
                        string.push(first);
                    }
                }
                b => string.push(b),
            }
        }
        strings.push(string);
    }
}

const FLEET: FleetSpec = FleetSpec {
    pods: &PODS,
    operator: "integrity",
    timeout: TIMEOUT,
};

/// Runs `test` on a fleet of its own (see [`FleetSpec`]: two dns-pods, one operator), one
/// test at a time.
async fn with_fleet<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(TestFleet) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    dns_fleet::with_fleet(&ONE_AT_A_TIME, prefix, FLEET, |fleet| {
        test(TestFleet(fleet))
    })
    .await;
}

/// A pod, the line `dig +short` printed for a TXT question to it, and that line's
/// character-strings.
type DugTxt = (&'static str, Vec<String>, Vec<Vec<u8>>);

/// A test's [`Fleet`], with what the tests of this file ask of every pod.
struct TestFleet(Arc<Fleet>);

impl std::ops::Deref for TestFleet {
    type Target = Fleet;

    fn deref(&self) -> &Fleet {
        &self.0
    }
}

impl TestFleet {
    /// Applies the Record `name` (`owner kind values`) of the Zone `zone`, in the test's
    /// namespace.
    async fn apply_record(
        &self,
        name: &str,
        zone: &str,
        owner: &str,
        kind: &str,
        values: &[&str],
    ) -> anyhow::Result<Record> {
        let manifest = record_manifest(name, zone, owner, kind, values);
        Ok(apply(&self.records, &manifest).await?)
    }

    /// What every pod answers for `name TXT` as `dig +short` prints it: one line (checked),
    /// and its character-strings.
    async fn dig_txt_all(&self, name: &str) -> anyhow::Result<Vec<DugTxt>> {
        let mut answers = Vec::new();
        for pod in PODS {
            let address = self.pod_address(pod).await?;
            let lines = dig_short(address, name, "TXT").await?;
            ensure!(lines.len() == 1, "{pod} answers {lines:?}");
            let strings = txt_strings(&lines[0])?;
            answers.push((pod, lines, strings));
        }
        Ok(answers)
    }

    /// Sets `www A address` in the Zone `acme` (`acme.test`) and waits until every pod
    /// serves it.
    async fn serve_www(&self, address: &str) -> anyhow::Result<()> {
        self.apply_record("www", "acme", "www", "A", &[address])
            .await?;
        self.wait_served("www.acme.test", "A", &[address]).await
    }

    /// What every pod answers, by pod.
    async fn ask_all(&self, name: &str, kind: &str) -> anyhow::Result<Vec<(String, Answer)>> {
        let record_type: RecordType = kind.parse()?;
        let mut answers = Vec::new();
        for pod in PODS {
            let address = self.pod_address(pod).await?;
            answers.push((pod.to_owned(), dns::ask(address, name, record_type).await?));
        }
        Ok(answers)
    }

    /// Checks that every pod answers `name kind` authoritatively with exactly `expected`
    /// (in any order).
    async fn served_now(&self, name: &str, kind: &str, expected: &[&str]) -> anyhow::Result<()> {
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        for (pod, answer) in self.ask_all(name, kind).await? {
            let rdata = answer.rdata();
            let got: BTreeSet<&str> = rdata.iter().map(String::as_str).collect();
            ensure!(
                answer.rcode() == ResponseCode::NoError
                    && answer.authoritative()
                    && got == expected,
                "{pod} answers {name} {kind} with {answer:?}, not {expected:?}"
            );
        }
        Ok(())
    }

    /// Waits until every pod answers `name kind` with exactly `expected`.
    async fn wait_served(&self, name: &str, kind: &str, expected: &[&str]) -> anyhow::Result<()> {
        wait_until(
            &format!("every pod to answer {name} {kind} with {expected:?}"),
            TIMEOUT,
            || async { Ok(self.served_now(name, kind, expected).await.ok()) },
        )
        .await?;
        // Once more, for the error message when it flaps.
        self.served_now(name, kind, expected).await
    }

    /// Checks for `period` that every pod keeps answering `name kind` with `expected`.
    async fn keeps_serving(
        &self,
        name: &str,
        kind: &str,
        expected: &[&str],
        period: Duration,
    ) -> anyhow::Result<()> {
        holds(period, || self.served_now(name, kind, expected)).await
    }

    /// The SOA serial every pod serves for `apex` (they must agree).
    async fn served_serial(&self, apex: &str) -> anyhow::Result<u32> {
        let mut serials = BTreeSet::new();
        for (pod, answer) in self.ask_all(apex, "SOA").await? {
            let serial = answer
                .soa_serial()
                .with_context(|| format!("{pod}'s SOA for {apex}: {answer:?}"))?;
            serials.insert(serial);
        }
        ensure!(
            serials.len() == 1,
            "the pods serve serials {serials:?} of {apex}"
        );
        serials.pop_first().context("a serial")
    }

    /// A Zone `name` for `domain` in the test's namespace with one Record (named as its
    /// owner) `owner A address`, once Ready and served by every pod.
    async fn zone_with_a(
        &self,
        name: &str,
        domain: &str,
        owner: &str,
        address: &str,
    ) -> anyhow::Result<Zone> {
        apply(&self.zones, &zone_manifest(name, domain, json!({}))).await?;
        self.apply_record(owner, name, owner, "A", &[address])
            .await?;
        let zone = self.wait_zone(name, "Ready", zone_ready).await?;
        self.wait_served(&format!("{owner}.{domain}"), "A", &[address])
            .await?;
        Ok(zone)
    }

    /// The Zone `acme` (`acme.test`) with `www A 192.0.2.10`, once Ready and served by
    /// every pod.
    async fn acme_with_www(&self) -> anyhow::Result<Zone> {
        self.zone_with_a("acme", "acme.test", "www", "192.0.2.10")
            .await
    }
}

/// Another namespace (`e2e-integrity-b-…`, deleted with the fleet) and its Zone and Record
/// APIs.
async fn namespace_b(fleet: &Fleet) -> anyhow::Result<(String, Api<Zone>, Api<Record>)> {
    let b = fleet.other_namespace("e2e-integrity-b-").await?;
    Ok((b.clone(), fleet.api_in(&b), fleet.api_in(&b)))
}

/// Applies the Zone `intruder` for `domain`, with `www A 203.0.113.66`.
async fn apply_intruder(
    zones: &Api<Zone>,
    records: &Api<Record>,
    domain: &str,
) -> anyhow::Result<()> {
    apply(zones, &zone_manifest("intruder", domain, json!({}))).await?;
    apply(
        records,
        &record_manifest("www", "intruder", "www", "A", &["203.0.113.66"]),
    )
    .await?;
    Ok(())
}

/// Checks `check` again and again for `period`; fails at the first failure.
async fn holds<F, Fut>(period: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let until = Instant::now() + period;
    loop {
        check().await?;
        if Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// 1. A second Zone for a domain cannot take it over, deleting it does not take the domain
///    down, and a rename (create the new Zone, delete the old) hands over within seconds.
#[tokio::test]
async fn takeover_and_lasting_outage_are_gone() {
    with_fleet("takeover", |fleet| async move {
        let a = fleet.ns.name.clone();
        let (b, zones_b, records_b) = namespace_b(&fleet).await?;

        fleet
            .zone_with_a("owner", "owned.test", "www", "192.0.2.10")
            .await?;

        // B's Zone for the same domain (other case), in a later second than A's (a
        // creationTimestamp has whole seconds; the same second is the next test's case):
        // refused, naming A's.
        let created = created_second(&fleet.zones.get("owner").await?)?;
        wait_until("a second after owner's creation", TIMEOUT, || async {
            Ok((Timestamp::now().as_second() > created).then_some(()))
        })
        .await?;
        apply_intruder(&zones_b, &records_b, "OWNED.Test").await?;
        let owner_key = format!("{a}/owner");
        let refused = fleet
            .wait_zone_in(
                &b,
                "intruder",
                "Ready=False DomainConflict naming A's Zone",
                |z| {
                    zone_condition(z, "Ready")
                        .is_some_and(|c| says(c, "False", "DomainConflict", &owner_key))
                },
            )
            .await?;
        eprintln!("intruder: {:?}", zone_condition(&refused, "Ready"));
        fleet
            .keeps_serving(
                "www.owned.test",
                "A",
                &["192.0.2.10"],
                Duration::from_secs(3),
            )
            .await?;

        // Deleting B's Zone leaves A's domain served.
        fleet.delete_zone_in(&b, "intruder").await?;
        fleet
            .keeps_serving(
                "www.owned.test",
                "A",
                &["192.0.2.10"],
                Duration::from_secs(5),
            )
            .await?;
        let owner = fleet.zones.get("owner").await?;
        ensure!(
            zone_has(&owner, "Ready", "True", None),
            "owner after the intruder went: {:?}",
            owner.status
        );
        let last_serial = serial_of(&owner).context("owner's serial")?;
        ensure!(fleet.served_serial("owned.test").await? == last_serial);

        // An Argo-style rename: the new Zone first, then the old one goes.
        apply(
            &fleet.zones,
            &zone_manifest("renamed", "owned.test", json!({})),
        )
        .await?;
        fleet
            .apply_record("www-renamed", "renamed", "www", "A", &["192.0.2.20"])
            .await?;
        fleet
            .wait_zone(
                "renamed",
                "Ready=False DomainConflict while owner lives",
                |z| zone_has(z, "Ready", "False", Some("DomainConflict")),
            )
            .await?;
        let last_serial = serial_of(&fleet.zones.get("owner").await?).context("owner's serial")?;
        let deleted = Instant::now();
        fleet.delete_zone_in(&a, "owner").await?;
        let renamed = fleet.wait_zone("renamed", "Ready", zone_ready).await?;
        fleet
            .wait_served("www.owned.test", "A", &["192.0.2.20"])
            .await?;
        let took = deleted.elapsed();
        eprintln!("the rename took {took:?}");
        ensure!(took < Duration::from_secs(15), "the rename took {took:?}");
        let serial = serial_of(&renamed).context("renamed's serial")?;
        ensure!(
            serial > last_serial,
            "renamed serves serial {serial}, owner had {last_serial}"
        );
        let served = fleet.served_serial("owned.test").await?;
        ensure!(
            served >= serial,
            "the pods serve serial {served}, renamed says {serial}"
        );
        Ok(())
    })
    .await;
}

/// 1b. A Zone created in the same second as the one serving its domain (creationTimestamp
///     has whole seconds) does not take the domain over either, even when its namespace
///     sorts first.
#[tokio::test]
async fn a_zone_created_in_the_same_second_does_not_take_over() {
    with_fleet("tie", |fleet| async move {
        let a = fleet.ns.name.clone();
        let (b, zones_b, records_b) = namespace_b(&fleet).await?;
        ensure!(
            b < a,
            "namespace {b} should sort before {a}, the tie-break that matters"
        );
        // Early in a second, so that the owner is served and the intruder created before it
        // ends; a few domains, in case the fleet is slow once.
        for attempt in 1..=3 {
            let domain = format!("tie{attempt}.test");
            let www = format!("www.{domain}");
            let name = format!("owner{attempt}");
            wait_until("the start of a second", TIMEOUT, || async {
                Ok((Timestamp::now().subsec_millisecond() < 100).then_some(()))
            })
            .await?;
            apply(&fleet.zones, &zone_manifest(&name, &domain, json!({}))).await?;
            fleet
                .apply_record(&format!("www{attempt}"), &name, "www", "A", &["192.0.2.10"])
                .await?;
            fleet.wait_served(&www, "A", &["192.0.2.10"]).await?;
            apply_intruder(&zones_b, &records_b, &domain).await?;
            let owner = created_second(&fleet.zones.get(&name).await?)?;
            let intruder = created_second(&zones_b.get("intruder").await?)?;
            if owner != intruder {
                eprintln!("attempt {attempt}: created in seconds {owner} and {intruder}");
                fleet.delete_zone_in(&b, "intruder").await?;
                continue;
            }
            let owner_key = format!("{a}/{name}");
            let refused = fleet
                .wait_zone_in(
                    &b,
                    "intruder",
                    "Ready=False DomainConflict naming A's Zone",
                    |z| {
                        zone_condition(z, "Ready")
                            .is_some_and(|c| c.status == "False" && c.message.contains(&owner_key))
                    },
                )
                .await;
            let zone = zones_b.get("intruder").await?;
            let served: Vec<Vec<String>> = fleet
                .ask_all(&www, "A")
                .await?
                .into_iter()
                .map(|(_, answer)| answer.rdata())
                .collect();
            ensure!(
                refused.is_ok(),
                "the intruder, created in the same second, was not refused: {:?}; the pods \
                 answer {www} A with {served:?}",
                zone_condition(&zone, "Ready")
            );
            fleet
                .keeps_serving(&www, "A", &["192.0.2.10"], Duration::from_secs(3))
                .await?;
            let owner = fleet.zones.get(&name).await?;
            ensure!(
                zone_has(&owner, "Ready", "True", None),
                "{name}: {:?}",
                owner.status
            );
            return Ok(());
        }
        bail!("never created both Zones in the same second")
    })
    .await;
}

/// 2. A child zone in another namespace is refused until the parent delegates it; then it
///    is served and the parent's data at its apex is occluded.
#[tokio::test]
async fn a_child_zone_in_another_namespace_needs_a_delegation() {
    with_fleet("child", |fleet| async move {
        let (b, zones_b, records_b) = namespace_b(&fleet).await?;

        fleet
            .zone_with_a("acme", "acme.test", "mx1", "192.0.2.1")
            .await?;

        apply(&zones_b, &zone_manifest("mx1", "mx1.acme.test", json!({}))).await?;
        apply(
            &records_b,
            &record_manifest("apex", "mx1", "@", "A", &["198.51.100.1"]),
        )
        .await?;
        fleet
            .wait_zone_in(&b, "mx1", "Ready=False DomainConflict", |z| {
                zone_has(z, "Ready", "False", Some("DomainConflict"))
            })
            .await?;
        fleet
            .keeps_serving("mx1.acme.test", "A", &["192.0.2.1"], Duration::from_secs(3))
            .await?;

        apply(
            &fleet.zones,
            &zone_manifest(
                "acme",
                "acme.test",
                json!({"delegations": [{"name": "mx1", "namespaces": [b]}]}),
            ),
        )
        .await?;
        fleet.wait_zone_in(&b, "mx1", "Ready", zone_ready).await?;
        fleet
            .wait_served("mx1.acme.test", "A", &["198.51.100.1"])
            .await?;
        // From the child zone: its own SOA at the apex.
        for (pod, answer) in fleet.ask_all("mx1.acme.test", "SOA").await? {
            ensure!(
                answer
                    .rdata()
                    .first()
                    .is_some_and(|soa| soa.starts_with("ns1.mx1.acme.test.")),
                "{pod}'s SOA for mx1.acme.test: {answer:?}"
            );
        }
        let child_key = format!("{b}/mx1");
        let occluded = fleet
            .wait_record(
                "mx1",
                "Accepted=False Occluded naming the child Zone",
                |r| {
                    record_condition(r, "Accepted")
                        .is_some_and(|c| says(c, "False", "Occluded", &child_key))
                },
            )
            .await?;
        eprintln!("occluded: {:?}", record_condition(&occluded, "Accepted"));
        fleet.wait_zone("acme", "Ready", zone_ready).await?;
        Ok(())
    })
    .await;
}

/// 3. A TXT value over 255 bytes is split into 255-byte strings, and the zone goes on.
#[tokio::test]
async fn a_long_txt_value_is_split_and_served() {
    with_fleet("longtxt", |fleet| async move {
        let key: String = (0..582)
            .map(|i| {
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64],
                )
            })
            .collect();
        let value = format!("v=DKIM1; k=rsa; p={key}");
        ensure!(value.len() == 600);
        apply(&fleet.zones, &zone_manifest("acme", "acme.test", json!({}))).await?;
        fleet
            .apply_record("www", "acme", "www", "A", &["192.0.2.10"])
            .await?;
        fleet
            .apply_record("dkim", "acme", "sel._domainkey", "TXT", &[&value])
            .await?;
        fleet
            .wait_record("dkim", "Accepted=True and Ready=True", |r| {
                record_has(r, "Accepted", "True", None) && record_has(r, "Ready", "True", None)
            })
            .await?;
        fleet.wait_zone("acme", "Ready", zone_ready).await?;
        for (pod, lines, strings) in fleet.dig_txt_all("sel._domainkey.acme.test").await? {
            let lengths: Vec<usize> = strings.iter().map(Vec::len).collect();
            ensure!(
                lengths == [255, 255, 90],
                "{pod}: strings of {lengths:?} bytes"
            );
            ensure!(strings.concat() == value.as_bytes(), "{pod}: {lines:?}");
        }
        fleet.serve_www("192.0.2.11").await?;
        fleet.wait_zone("acme", "Ready", zone_ready).await?;
        Ok(())
    })
    .await;
}

/// 4. An invalid CAA is refused with a reason; the zone, a valid CAA and later changes are
///    served.
#[tokio::test]
async fn an_invalid_caa_is_refused_and_the_zone_goes_on() {
    with_fleet("caa", |fleet| async move {
        apply(&fleet.zones, &zone_manifest("acme", "acme.test", json!({}))).await?;
        fleet
            .apply_record("www", "acme", "www", "A", &["192.0.2.10"])
            .await?;
        fleet
            .apply_record("caa-bad", "acme", "bad", "CAA", &["0 bogus-tag \"x\""])
            .await?;
        fleet
            .apply_record("caa", "acme", "@", "CAA", &["0 issue \"letsencrypt.org\""])
            .await?;
        let bad = fleet
            .wait_record("caa-bad", "Accepted=False InvalidRData", |r| {
                record_has(r, "Accepted", "False", Some("InvalidRData"))
            })
            .await?;
        let message = &record_condition(&bad, "Accepted")
            .context("Accepted")?
            .message;
        ensure!(!message.trim().is_empty(), "InvalidRData without a message");
        eprintln!("caa-bad: {message}");
        fleet
            .wait_zone("acme", "Ready=True, Degraded=True RecordsRejected", |z| {
                zone_ready(z) && zone_has(z, "Degraded", "True", Some("RecordsRejected"))
            })
            .await?;
        fleet
            .wait_served("acme.test", "CAA", &["0 issue \"letsencrypt.org\""])
            .await?;
        for (pod, answer) in fleet.ask_all("bad.acme.test", "CAA").await? {
            ensure!(
                answer.rdata().is_empty(),
                "{pod} serves the invalid CAA: {answer:?}"
            );
        }
        fleet.serve_www("192.0.2.11").await?;
        Ok(())
    })
    .await;
}

/// 5. An unquoted TXT is one string; a relative name that repeats the zone is refused.
#[tokio::test]
async fn unquoted_txt_is_one_string_and_ambiguous_names_are_refused() {
    with_fleet("names", |fleet| async move {
        let spf = "v=spf1 include:_spf.example.net ~all";
        apply(&fleet.zones, &zone_manifest("acme", "acme.test", json!({}))).await?;
        fleet
            .apply_record("api", "acme", "api.acme.test", "A", &["192.0.2.7"])
            .await?;
        fleet
            .apply_record("spf", "acme", "@", "TXT", &[spf])
            .await?;
        fleet
            .wait_record("api", "Accepted=False AmbiguousName", |r| {
                record_has(r, "Accepted", "False", Some("AmbiguousName"))
            })
            .await?;
        fleet
            .wait_record("spf", "Ready", |r| record_has(r, "Ready", "True", None))
            .await?;
        fleet.wait_zone("acme", "Ready", zone_ready).await?;
        for (pod, lines, strings) in fleet.dig_txt_all("acme.test").await? {
            ensure!(strings == [spf.as_bytes()], "{pod} answers {lines:?}");
        }
        for (pod, answer) in fleet.ask_all("api.acme.test.acme.test.", "A").await? {
            ensure!(
                answer.rcode() == ResponseCode::NXDomain && answer.rdata().is_empty(),
                "{pod} answers api.acme.test.acme.test. with {answer:?}"
            );
        }
        for (pod, answer) in fleet.ask_all("api.acme.test.", "A").await? {
            ensure!(
                answer.rdata().is_empty(),
                "{pod} answers api.acme.test. with {answer:?}"
            );
        }
        Ok(())
    })
    .await;
}

/// 6a. A frozen pod keeps the Zone from being Ready until it serves the change.
#[tokio::test]
async fn ready_means_served_by_every_pod() {
    with_fleet("frozenpod", |fleet| async move {
        let zone = fleet.acme_with_www().await?;
        let before = serial_of(&zone).context("a serial")?;

        let frozen = fleet.pid_of("dns-b")?;
        let frozen_address = fleet.pod_address("dns-b").await?;
        let live_address = fleet.pod_address("dns-a").await?;
        kill(frozen, Signal::SIGSTOP)?;
        let outcome = async {
            fleet
                .apply_record("www", "acme", "www", "A", &["192.0.2.99"])
                .await?;
            let zone = fleet
                .wait_zone("acme", "a new serial, not Ready", |z| {
                    serial_of(z).is_some_and(|s| s != before)
                        && zone_condition(z, "Ready").is_some_and(|c| {
                            c.status == "False"
                                && (c.reason == "Progressing" || c.reason == "ServersNotSynced")
                        })
                })
                .await?;
            eprintln!(
                "while dns-b is frozen: {:?}",
                zone_condition(&zone, "Ready")
            );
            wait_until("dns-a to serve the change", TIMEOUT, || async {
                let answer = dns::ask(live_address, "www.acme.test", RecordType::A).await?;
                Ok((answer.rdata() == ["192.0.2.99"]).then_some(()))
            })
            .await?;
            ensure!(
                dns::ask(frozen_address, "www.acme.test", RecordType::A)
                    .await
                    .is_err(),
                "the frozen dns-b answered"
            );
            let (ok, output) = fleet.kubectl_wait("zone/acme", "Ready", "5s")?;
            ensure!(
                !ok,
                "kubectl wait --for=condition=Ready succeeded with dns-b frozen: {output}"
            );
            let zone = fleet.zones.get("acme").await?;
            ensure!(
                !zone_has(&zone, "Ready", "True", None),
                "Ready with dns-b frozen: {:?}",
                zone.status
            );
            anyhow::Ok(())
        }
        .await;
        kill(frozen, Signal::SIGCONT)?;
        outcome?;
        let (ok, output) = fleet.kubectl_wait("zone/acme", "Ready", "60s")?;
        ensure!(
            ok,
            "kubectl wait --for=condition=Ready after thawing: {output}"
        );
        fleet
            .wait_served("www.acme.test", "A", &["192.0.2.99"])
            .await?;
        Ok(())
    })
    .await;
}

/// 6b. A frozen NATS server: the Zone does not claim Ready for a version no pod has.
#[tokio::test]
async fn ready_is_not_claimed_while_nats_is_frozen() {
    with_fleet("frozennats", |fleet| async move {
        let zone = fleet.acme_with_www().await?;
        let before = serial_of(&zone).context("a serial")?;
        let old_message = format!("serve serial {before}");

        let nats = Pid::from_raw(i32::try_from(
            fleet.nats.pid().context("the NATS server's pid")?,
        )?);
        kill(nats, Signal::SIGSTOP)?;
        let frozen_at = Instant::now();
        let outcome = async {
            fleet
                .apply_record("www", "acme", "www", "A", &["192.0.2.99"])
                .await?;
            // The new version is announced before it is published: Ready goes False at
            // once, not when the publish gives up.
            let zone = wait_until(
                "Ready=False (PublishFailed or Progressing) within 5 s",
                Duration::from_secs(5),
                || async {
                    let zone = fleet.zones.get("acme").await?;
                    let ready = zone_condition(&zone, "Ready").context("Ready")?;
                    // Ready=True may only speak of the version the pods serve.
                    ensure!(
                        ready.status != "True" || ready.message.contains(&old_message),
                        "Ready=True for a version no pod serves: {ready:?}"
                    );
                    Ok((ready.status == "False"
                        && (ready.reason == "PublishFailed" || ready.reason == "Progressing")
                        && ready.observed_generation == zone.metadata.generation)
                        .then_some(zone))
                },
            )
            .await?;
            eprintln!(
                "{:?} after freezing NATS: {:?}",
                frozen_at.elapsed(),
                zone_condition(&zone, "Ready")
            );
            fleet
                .served_now("www.acme.test", "A", &["192.0.2.10"])
                .await?;
            let failed = wait_until("Ready=False, PublishFailed", TIMEOUT, || async {
                let zone = fleet.zones.get("acme").await?;
                let ready = zone_condition(&zone, "Ready").context("Ready")?;
                ensure!(
                    ready.status != "True",
                    "Ready=True with NATS frozen: {ready:?}"
                );
                Ok((ready.reason == "PublishFailed").then(|| ready.clone()))
            })
            .await?;
            eprintln!("{:?} after freezing NATS: {failed:?}", frozen_at.elapsed());
            let (ok, output) = fleet.kubectl_wait("zone/acme", "Ready", "5s")?;
            ensure!(
                !ok,
                "kubectl wait --for=condition=Ready succeeded with NATS frozen: {output}"
            );
            anyhow::Ok(())
        }
        .await;
        kill(nats, Signal::SIGCONT)?;
        outcome?;
        let thawed = Instant::now();
        let zone = wait_for_object(
            &fleet.zones,
            "acme",
            "Ready at a newer serial",
            Duration::from_secs(60),
            |z| zone_ready(z) && serial_of(z).is_some_and(|s| s != before),
        )
        .await?;
        fleet
            .wait_served("www.acme.test", "A", &["192.0.2.99"])
            .await?;
        eprintln!(
            "{:?} after thawing NATS: {:?}",
            thawed.elapsed(),
            zone_condition(&zone, "Ready")
        );
        Ok(())
    })
    .await;
}

/// 7. `Programmed` speaks of the Record's current generation, and goes with its Zone.
#[tokio::test]
async fn programmed_is_current() {
    with_fleet("programmed", |fleet| async move {
        fleet.acme_with_www().await?;
        fleet
            .wait_record("www", "Programmed", |r| {
                record_has(r, "Programmed", "True", None)
            })
            .await?;

        let updated = fleet
            .apply_record("www", "acme", "www", "A", &["192.0.2.11"])
            .await?;
        ensure!(
            updated.metadata.generation == Some(2),
            "generation {:?}",
            updated.metadata.generation
        );
        let (ok, output) = fleet.kubectl_wait("record/www", "Programmed", "60s")?;
        ensure!(ok, "kubectl wait --for=condition=Programmed: {output}");
        let record = fleet.records.get("www").await?;
        let programmed = record_condition(&record, "Programmed").context("Programmed")?;
        ensure!(
            programmed.status == "True" && programmed.observed_generation == Some(2),
            "Programmed after kubectl wait: {programmed:?}"
        );
        ensure!(
            record_has(&record, "Ready", "True", None),
            "Ready: {:?}",
            record.status
        );
        fleet
            .served_now("www.acme.test", "A", &["192.0.2.11"])
            .await?;

        fleet.delete_zone_in(&fleet.ns.name, "acme").await?;
        let record = fleet
            .wait_record("www", "Programmed=False, Ready=False ZoneNotFound", |r| {
                record_has(r, "Programmed", "False", None)
                    && record_has(r, "Ready", "False", Some("ZoneNotFound"))
                    && record_has(r, "Accepted", "False", Some("ZoneNotFound"))
            })
            .await?;
        eprintln!("after the Zone went: {:?}", record.status);
        Ok(())
    })
    .await;
}

/// 8. One `Published` Event per serial, and fleet metrics that go with their Zone.
#[tokio::test]
async fn events_and_metrics_say_what_happened() {
    with_fleet("events", |fleet| async move {
        let zone = fleet.acme_with_www().await?;
        let mut serials = vec![serial_of(&zone).context("a serial")?];
        for address in ["192.0.2.11", "192.0.2.12", "192.0.2.13"] {
            fleet
                .apply_record("www", "acme", "www", "A", &[address])
                .await?;
            let last = *serials.last().context("a serial")?;
            let zone = fleet
                .wait_zone("acme", "Ready at a new serial", |z| {
                    zone_ready(z) && serial_of(z).is_some_and(|s| s != last)
                })
                .await?;
            fleet.wait_served("www.acme.test", "A", &[address]).await?;
            serials.push(serial_of(&zone).context("a serial")?);
        }
        let events = wait_until("a Published Event for each serial", TIMEOUT, || async {
            let events =
                events_about(&fleet.ns.client, &fleet.ns.name, "Zone", Some("acme")).await?;
            let all = serials.iter().all(|serial| {
                let prefix = format!("Published: serial {serial} with ");
                events
                    .iter()
                    .filter(|e| e.starts_with(&prefix) && e.ends_with(" records"))
                    .count()
                    == 1
            });
            Ok(all.then_some(events))
        })
        .await?;
        eprintln!("serials {serials:?}; events {events:#?}");

        let series = format!(
            "zonefleet_operator_pods_out_of_sync{{zone=\"{}/acme\"}}",
            fleet.ns.name
        );
        let metrics = wait_until("the zone's out-of-sync series", TIMEOUT, || async {
            let metrics = fleet.metrics().await?;
            Ok(metrics
                .lines()
                .any(|l| l.starts_with(&series))
                .then_some(metrics))
        })
        .await?;
        ensure!(
            metrics
                .lines()
                .any(|l| l.starts_with("zonefleet_operator_pod_zone_pairs_out_of_sync")),
            "no zonefleet_operator_pod_zone_pairs_out_of_sync:\n{metrics}"
        );
        ensure!(
            !metrics.contains("zonefleet_operator_pods_out_of_sync_total"),
            "zonefleet_operator_pods_out_of_sync_total is exported:\n{metrics}"
        );
        fleet.delete_zone_in(&fleet.ns.name, "acme").await?;
        wait_until(
            "the zone's out-of-sync series to be gone",
            TIMEOUT,
            || async {
                let metrics = fleet.metrics().await?;
                Ok((!metrics.lines().any(|l| l.starts_with(&series))).then_some(()))
            },
        )
        .await?;
        Ok(())
    })
    .await;
}

#[test]
fn parses_txt_strings_as_dig_prints_them() {
    assert_eq!(
        txt_strings(r#""a b" "c\"d\\" "\032x""#).unwrap(),
        [b"a b".to_vec(), b"c\"d\\".to_vec(), b" x".to_vec()]
    );
    assert!(txt_strings("\"open").is_err());
}
