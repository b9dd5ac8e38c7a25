//! The Helm chart: it lints, its values schema refuses typos, and it renders objects the
//! API server accepts (server-side dry run) for the default values and the other shapes
//! users choose: external NATS, a DaemonSet, a LoadBalancer.

use std::process::Command;

use anyhow::{Context, ensure};
use zonefleet_e2e::{
    harness::{TestNamespace, with_test_namespace},
    tools::{chart_dir, enforce_restricted_pod_security, kubectl, run, run_with_input, tool},
};

/// `helm template` with `values`, then `kubectl apply --dry-run=server` of the result.
fn template_and_dry_run(ns: &TestNamespace, values: &[&str]) -> anyhow::Result<String> {
    let mut template = Command::new(tool("helm")?);
    template.args(["template", "zf", &chart_dir(), "--namespace", &ns.name]);
    for value in values {
        template.args(["--set", value]);
    }
    let manifests = run(&mut template)?;
    let (_, stderr) = run_with_input(
        kubectl(ns)?.args(["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"]),
        &manifests,
    )
    .with_context(|| format!("the API server refused the chart rendered with {values:?}"))?;
    // The namespace warns on Pod Security "restricted": the pod templates must pass it.
    ensure!(
        !stderr.contains("PodSecurity"),
        "the chart rendered with {values:?} breaks Pod Security \"restricted\":\n{stderr}"
    );
    Ok(manifests)
}

#[test]
fn the_chart_lints_and_its_schema_refuses_typos() -> anyhow::Result<()> {
    let helm = tool("helm")?;
    run(Command::new(&helm).args(["lint", "--strict", &chart_dir()]))?;
    for bad in [
        "dns.replica=3",
        "dns.kind=Daemonset",
        "nats.bundled.replicas=2",
        "operator.replicas=two",
    ] {
        let output = Command::new(&helm)
            .args(["template", "zf", &chart_dir(), "--set", bad])
            .output()?;
        ensure!(!output.status.success(), "the chart accepted {bad}");
    }
    Ok(())
}

#[tokio::test]
async fn every_shape_of_the_chart_is_accepted_by_the_api_server() {
    with_test_namespace("chart", |ns| async move {
        zonefleet_e2e::operator::install_crds(&ns.client).await?;
        enforce_restricted_pod_security(&ns)?;
        let default = template_and_dry_run(&ns, &[])?;
        ensure!(
            default.contains("kind: StatefulSet"),
            "bundled NATS by default"
        );
        let external = template_and_dry_run(
            &ns,
            &[
                "nats.bundled.enabled=false",
                "nats.external.url=tls://nats.example.net:4222",
                "nats.external.existingSecret=nats-credentials",
                "nats.external.tls.secret=nats-tls",
                "nats.external.tls.clientCertificate=true",
            ],
        )?;
        ensure!(!external.contains("kind: StatefulSet"), "no bundled NATS");
        ensure!(external.contains("tls://nats.example.net:4222"));
        let daemonset = template_and_dry_run(
            &ns,
            &[
                "dns.kind=DaemonSet",
                "networkPolicy.enabled=true",
                "metrics.grafanaDashboard.enabled=true",
                "nats.bundled.replicas=3",
            ],
        )?;
        ensure!(daemonset.contains("kind: DaemonSet"));
        ensure!(daemonset.contains("kind: NetworkPolicy"));
        let balancer = template_and_dry_run(
            &ns,
            &[
                "dns.service.type=LoadBalancer",
                "dns.service.externalTrafficPolicy=Local",
                "dns.service.annotations.example\\.com/pool=dns",
            ],
        )?;
        ensure!(balancer.contains("type: LoadBalancer"));
        ensure!(balancer.contains("externalTrafficPolicy: Local"));
        Ok(())
    })
    .await;
}
