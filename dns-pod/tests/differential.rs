//! Differential test: dns-pod gives the same answers as NSD and Knot DNS.
//!
//! NSD and Knot are two independent, widely deployed authoritative servers. This test starts
//! both, and the dns-pod binary in static mode, on the same zone files
//! (`tests/differential/zones/`), sends every server the same deterministic set of queries
//! (see `differential/queries.rs`) and compares the responses field by field: rcode, AA, TC,
//! EDNS presence, the answer and authority sections, and the glue of referrals. Sections are
//! compared as multisets of (owner, type, class, TTL, canonical RDATA), with owner names
//! lowercased. For dns-pod the question section must also echo the query name's exact case.
//!
//! Where NSD and Knot disagree with each other, the behaviour is left open: the query is
//! reported but not held against dns-pod. Where they agree, they are the oracle and any
//! difference from dns-pod fails the test. The test also checks that the oracle covers most
//! queries, so it cannot pass vacuously, and it fails (never skips) when `nsd` or `knot` is
//! not installed.
//!
//! Run it with `cargo test -p zonefleet-dns-pod --test differential -- --nocapture` to see
//! the summary on success too; set `DIFFERENTIAL_DUMP=<file>` to also write every query with
//! all three responses to a file.

#[path = "differential/client.rs"]
mod client;
#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/queries.rs"]
mod queries;
#[path = "differential/servers.rs"]
mod servers;
#[path = "differential/zones.rs"]
mod zones;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use compare::{Normalized, Reply, dig, question_mismatch};
use queries::QuerySpec;
use servers::Server;
use zones::ZoneSet;

/// The share of queries (in percent) on which NSD and Knot must agree for the comparison
/// to mean much.
const MIN_REFERENCE_AGREEMENT_PERCENT: usize = 90;

#[test]
fn dns_pod_answers_like_nsd_and_knot() {
    let zones =
        ZoneSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/zones"));
    let queries = queries::generate(&zones);

    let nsd_replies = ask_all(&Server::start_nsd(&zones), &queries);
    let knot_replies = ask_all(&Server::start_knot(&zones), &queries);
    let oracle = Oracle::build(&nsd_replies, &knot_replies);
    dump_if_requested(&queries, &[("nsd", &nsd_replies), ("knot", &knot_replies)]);
    println!("{}", oracle.summary(&queries, &nsd_replies, &knot_replies));
    oracle.assert_meaningful(&queries);

    let pod_replies = ask_dns_pod(&zones, &queries);
    let failures = dns_pod_failures(&queries, &oracle, &pod_replies);
    let replies = [&nsd_replies[..], &knot_replies[..], &pod_replies[..]];
    dump_if_requested(
        &queries,
        &[
            ("nsd", replies[0]),
            ("knot", replies[1]),
            ("dns-pod", replies[2]),
        ],
    );
    println!("{}", open_questions(&queries, &oracle, &pod_replies));
    println!("{}", failure_report(&queries, &failures, replies));
    assert!(
        failures.is_empty(),
        "dns-pod differs from NSD and Knot on {} of {} queries (details above)",
        failures.len(),
        queries.len()
    );
}

/// Starts dns-pod, sends it every query and checks that it answered each one.
fn ask_dns_pod(zones: &ZoneSet, queries: &[QuerySpec]) -> Vec<Reply> {
    let pod = Server::start_dns_pod(zones);
    let replies = ask_all(&pod, queries);
    let unanswered: Vec<_> = replies
        .iter()
        .filter_map(|reply| reply.as_ref().err())
        .collect();
    assert!(
        unanswered.is_empty(),
        "dns-pod left {} of {} queries unanswered, first: {}; its output:\n{}",
        unanswered.len(),
        queries.len(),
        unanswered[0],
        pod.stderr()
    );
    replies
}

/// Sends every query to `server`, in order; message ids are the query's index (mod 2^16).
fn ask_all(server: &Server, queries: &[QuerySpec]) -> Vec<Reply> {
    queries
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let id = u16::try_from(index % 0x1_0000).expect("fits in u16");
            client::exchange(server.addr, spec, id)
                .map_err(|e| format!("{} did not answer: {e}", server.name))
        })
        .collect()
}

/// What NSD and Knot jointly say: the expected response per query where they agree.
#[derive(Debug)]
struct Oracle {
    /// NSD's and Knot's normalized responses per query (`None`: no response).
    references: Vec<(Option<Normalized>, Option<Normalized>)>,
    /// The agreed response, or `None` where the references disagree or one did not answer.
    expected: Vec<Option<Normalized>>,
    /// Why the references disagree, per query index (field names or "no response").
    disagreements: BTreeMap<usize, String>,
}

impl Oracle {
    fn build(nsd: &[Reply], knot: &[Reply]) -> Self {
        let references: Vec<_> = nsd
            .iter()
            .zip(knot)
            .map(|(nsd, knot)| {
                (
                    nsd.as_ref().ok().map(Normalized::of),
                    knot.as_ref().ok().map(Normalized::of),
                )
            })
            .collect();
        let mut expected = Vec::with_capacity(references.len());
        let mut disagreements = BTreeMap::new();
        for (index, pair) in references.iter().enumerate() {
            match pair {
                (Some(nsd), Some(knot)) if nsd == knot => expected.push(Some(nsd.clone())),
                (Some(nsd), Some(knot)) => {
                    disagreements.insert(index, nsd.differences(knot).join("+"));
                    expected.push(None);
                }
                _ => {
                    disagreements.insert(index, "no response".to_owned());
                    expected.push(None);
                }
            }
        }
        Self {
            references,
            expected,
            disagreements,
        }
    }

    /// Panics unless the references agree on most queries and REFUSE every out-of-zone name.
    fn assert_meaningful(&self, queries: &[QuerySpec]) {
        let agreed = self.expected.iter().flatten().count();
        assert!(
            agreed * 100 > queries.len() * MIN_REFERENCE_AGREEMENT_PERCENT,
            "NSD and Knot agree on only {agreed} of {} queries (need more than \
             {MIN_REFERENCE_AGREEMENT_PERCENT}%); the comparison would mean little \
             (see the disagreements above)",
            queries.len(),
        );
        for (spec, expected) in queries.iter().zip(&self.expected) {
            if spec.out_of_zone {
                let rcode = expected.as_ref().map(Normalized::rcode);
                assert_eq!(
                    rcode,
                    Some(ResponseCode::Refused),
                    "NSD and Knot must both REFUSE out-of-zone query {spec}"
                );
            }
        }
    }

    fn summary(&self, queries: &[QuerySpec], nsd: &[Reply], knot: &[Reply]) -> String {
        let mut by_category: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (&index, fields) in &self.disagreements {
            let kind = if queries[index].qtype == RecordType::ANY {
                "qtype ANY"
            } else {
                "other qtypes"
            };
            by_category
                .entry(format!("{fields} ({kind})"))
                .or_default()
                .push(index);
        }
        let mut out = format!(
            "\n==== NSD vs Knot: {} queries, {} agreements, {} disagreements ====\n",
            queries.len(),
            queries.len() - self.disagreements.len(),
            self.disagreements.len()
        );
        for (category, indexes) in &by_category {
            let _ = writeln!(out, "  {category}: {}", indexes.len());
        }
        for (category, indexes) in &by_category {
            let _ = writeln!(out, "\n---- disagreement: {category} ----");
            for &index in indexes {
                let _ = writeln!(
                    out,
                    "{}\n  nsd:\n{}  knot:\n{}",
                    queries[index],
                    dig(&nsd[index]),
                    dig(&knot[index])
                );
            }
        }
        out
    }
}

/// How dns-pod answered where NSD and Knot disagree: informational, never a failure.
fn open_questions(queries: &[QuerySpec], oracle: &Oracle, pod: &[Reply]) -> String {
    let mut out = String::from("\n==== dns-pod where NSD and Knot disagree (not checked) ====\n");
    for (&index, fields) in &oracle.disagreements {
        let verdict = match (&pod[index], &oracle.references[index]) {
            (Ok(message), (Some(nsd), Some(knot))) => {
                let pod = Normalized::of(message);
                match (pod == *nsd, pod == *knot) {
                    (true, true) => "like both",
                    (true, false) => "like NSD",
                    (false, true) => "like Knot",
                    (false, false) => "like neither",
                }
            }
            (Err(_), _) => "no response",
            _ => "a reference did not answer",
        };
        let _ = writeln!(
            out,
            "  {} [{fields}]: dns-pod answers {verdict}",
            queries[index]
        );
    }
    out
}

/// Writes every query with each server's response to `$DIFFERENTIAL_DUMP`, if set.
fn dump_if_requested(queries: &[QuerySpec], servers: &[(&str, &[Reply])]) {
    let Some(path) = std::env::var_os("DIFFERENTIAL_DUMP") else {
        return;
    };
    let mut out = String::new();
    for (index, spec) in queries.iter().enumerate() {
        let _ = writeln!(out, "#{index} {spec}");
        for (name, replies) in servers {
            let _ = write!(out, "  {name}:\n{}", dig(&replies[index]));
        }
    }
    std::fs::write(&path, out).expect("writing $DIFFERENTIAL_DUMP");
}

/// A query on which dns-pod does not match the agreed reference response.
#[derive(Debug)]
struct Failure {
    index: usize,
    reasons: Vec<String>,
}

/// Compares dns-pod's replies with the oracle (and its question echo with the query).
fn dns_pod_failures(queries: &[QuerySpec], oracle: &Oracle, pod: &[Reply]) -> Vec<Failure> {
    let mut failures = Vec::new();
    for (index, (spec, reply)) in queries.iter().zip(pod).enumerate() {
        let mut reasons = Vec::new();
        match reply {
            Err(error) => reasons.push(error.clone()),
            Ok(message) => {
                reasons.extend(question_mismatch(spec, message));
                if let Some(expected) = &oracle.expected[index] {
                    let differences = expected.differences(&Normalized::of(message));
                    if !differences.is_empty() {
                        reasons.push(format!("differs in {}", differences.join(", ")));
                    }
                }
            }
        }
        if !reasons.is_empty() {
            failures.push(Failure { index, reasons });
        }
    }
    failures
}

/// The final summary, with every dns-pod difference shown next to NSD's and Knot's answers.
fn failure_report(queries: &[QuerySpec], failures: &[Failure], replies: [&[Reply]; 3]) -> String {
    let mut out = format!(
        "\n==== dns-pod vs NSD and Knot: {} queries sent, {} differences ====\n",
        queries.len(),
        failures.len()
    );
    if failures.is_empty() {
        out.push_str("dns-pod matches NSD and Knot wherever they agree.\n");
    }
    for failure in failures {
        let index = failure.index;
        let _ = writeln!(
            out,
            "\n#{index} {}: {}\n  nsd:\n{}  knot:\n{}  dns-pod:\n{}",
            queries[index],
            failure.reasons.join("; "),
            dig(&replies[0][index]),
            dig(&replies[1][index]),
            dig(&replies[2][index])
        );
    }
    out
}
