//! Zone access documents end to end: the operator reads a Zone's TSIG key from its Secret
//! and publishes the zone's transfer rules and keys to a real NATS JetStream, sealed and
//! signed with the message key; a Zone whose Secret is missing is `InvalidSpec` until the
//! Secret appears; deleting the Zone purges its document.
//!
//! The test owns its NATS server and its operator, which watches every namespace.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, ensure};
use async_nats::jetstream::{self, stream::LastRawMessageErrorKind};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use serde_json::json;
use zonefleet_api::Zone;
use zonefleet_e2e::{
    harness::{wait_for_object, wait_until, with_test_namespace},
    nats::NatsServer,
    operator::{OperatorProcess, apply, delete_zones, install_crds},
};
use zonefleet_nats::{
    ACCESS_DIGEST, AccessKey, AccessRule, Layout, MessageKey, SIGNATURE, ZoneAccess,
};

const TIMEOUT: Duration = Duration::from_secs(60);
/// A hmac-sha256 key as `tsig-keygen` prints it.
const TSIG_SECRET: &str = "84fE+B38O67WXeiXANVsd0/eo+CT7HxMYbzZTWJ21YA=";

fn secret(name: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("secret".to_owned(), value.to_owned())])),
        ..Secret::default()
    }
}

fn zone(name: &str, domain: &str, secret: &str) -> serde_json::Value {
    json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
        "metadata": {"name": name},
        "spec": {
            "domain": domain,
            "nameServers": [{"name": format!("ns1.{domain}"), "addresses": ["192.0.2.53"]}],
            "tsigKeys": [{"name": format!("Transfer.{domain}"), "algorithm": "hmac-sha256",
                          "secretRef": {"name": secret}}],
            "transfer": {"allow": [
                {"networks": ["192.0.2.0/24"], "tsigKey": format!("transfer.{domain}")},
                {"networks": ["198.51.100.7"]},
            ]},
        },
    })
}

/// The zone's document as the pods would read it: the last message on its subject, signed
/// and opened with `key`; `None` while there is none.
async fn published(
    stream: &jetstream::stream::Stream,
    layout: &Layout,
    origin: &str,
    key: &MessageKey,
) -> anyhow::Result<Option<ZoneAccess>> {
    let subject = layout.access_subject(origin);
    let message = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => message,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    key.verify(
        &subject,
        &message.payload,
        message.headers.get(SIGNATURE).map(|v| v.as_str()),
    )
    .context("the access document's signature")?;
    ensure!(
        !String::from_utf8_lossy(&message.payload).contains(TSIG_SECRET),
        "the TSIG secret is on the stream in the clear"
    );
    let access = ZoneAccess::open(&message.payload, Some(key))?;
    ensure!(
        message.headers.get(ACCESS_DIGEST).map(|v| v.as_str())
            == Some(access.digest(Some(key)).as_str()),
        "the digest header does not match the document"
    );
    Ok(Some(access))
}

fn ready_reason(zone: &Zone) -> Option<(String, String)> {
    zone.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn transfer_rules_and_tsig_keys_reach_nats_sealed_and_a_missing_secret_is_invalid() {
    with_test_namespace("access", |ns| async move {
        install_crds(&ns.client).await?;
        let prefix = format!("e2e-{}", ns.name);
        let layout = Layout::new(&prefix)?;
        let nats = NatsServer::start(&ns.env, &ns.name).await?;
        let dir = ns.env.dir()?.join(&ns.name);
        std::fs::create_dir_all(&dir)?;
        let key_file = dir.join("message.key");
        std::fs::write(&key_file, "access-e2e-message-key-0123456789abcdef\n")?;
        let key = MessageKey::from_file(&key_file)?;
        let mut env = nats.client_env(&prefix);
        env.push((
            "ZONEFLEET_MESSAGE_KEY_FILE".into(),
            key_file.display().to_string(),
        ));
        let mut operator = OperatorProcess::start_with(&ns.env, &ns.name, "access-operator", &env)?;
        let zones: Api<Zone> = Api::namespaced(ns.client.clone(), &ns.name);
        let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
        let domain = format!("{}.xfr.example", ns.name);
        let origin = format!("{domain}.");

        // 1. A Zone with a TSIG key and transfer rules, and the key's Secret (with the
        //    newline `kubectl create secret --from-file` keeps).
        secrets
            .create(
                &PostParams::default(),
                &secret("xfr-key", &format!("{TSIG_SECRET}\n")),
            )
            .await?;
        apply(&zones, &zone("xfr", &domain, "xfr-key")).await?;
        let client = async_nats::ConnectOptions::new()
            .user_and_password(nats.user.clone(), nats.password.clone())
            .connect(nats.url())
            .await?;
        let js = jetstream::new(client);
        let stream = wait_until("the access stream", TIMEOUT, || async {
            Ok(js.get_stream(layout.access_stream()).await.ok())
        })
        .await?;
        let access = wait_until("the access document", TIMEOUT, || async {
            published(&stream, &layout, &origin, &key).await
        })
        .await?;
        let key_name = format!("transfer.{origin}");
        let expected = ZoneAccess {
            origin: origin.clone(),
            transfer: vec![
                AccessRule {
                    networks: vec!["192.0.2.0/24".parse()?],
                    key: Some(key_name.clone()),
                },
                AccessRule {
                    networks: vec!["198.51.100.7/32".parse()?],
                    key: None,
                },
            ],
            keys: vec![AccessKey {
                name: key_name,
                algorithm: "hmac-sha256".into(),
                secret: TSIG_SECRET.into(),
            }],
        };
        ensure!(access == expected, "published {access:?}");
        let info = stream.get_info().await?;
        ensure!(
            info.config.max_messages_per_subject == 1,
            "{:?}",
            info.config
        );

        // 2. A Zone whose Secret does not exist: InvalidSpec, naming it; nothing published.
        let missing_domain = format!("{}.missing.example", ns.name);
        let missing_origin = format!("{missing_domain}.");
        apply(&zones, &zone("missing", &missing_domain, "absent")).await?;
        let invalid = wait_for_object(&zones, "missing", "Ready=False InvalidSpec", TIMEOUT, |z| {
            ready_reason(z).is_some_and(|(reason, _)| reason == "InvalidSpec")
        })
        .await?;
        let (_, message) = ready_reason(&invalid).context("a Ready condition")?;
        ensure!(
            message.contains(&format!("Secret {}/absent not found", ns.name))
                && message.contains("spec.tsigKeys[0]"),
            "Ready message: {message}"
        );
        ensure!(
            published(&stream, &layout, &missing_origin, &key)
                .await?
                .is_none(),
            "a document was published for the Zone without its Secret"
        );

        // 3. The Secret appears: the retried reconcile publishes the Zone and its document.
        secrets
            .create(&PostParams::default(), &secret("absent", TSIG_SECRET))
            .await?;
        wait_for_object(&zones, "missing", "published", TIMEOUT, |z| {
            z.status.as_ref().and_then(|s| s.serial).is_some()
                && ready_reason(z).is_some_and(|(reason, _)| reason != "InvalidSpec")
        })
        .await?;
        wait_until("the second access document", TIMEOUT, || async {
            published(&stream, &layout, &missing_origin, &key).await
        })
        .await?;

        // 4. Deleting a Zone purges its document.
        zones.delete("xfr", &DeleteParams::default()).await?;
        wait_until("the access document purged", TIMEOUT, || async {
            Ok(published(&stream, &layout, &origin, &key)
                .await?
                .is_none()
                .then_some(()))
        })
        .await?;

        delete_zones(&ns.client, &ns.name, TIMEOUT).await?;
        operator.terminate().await?;
        let mut nats = nats;
        nats.stop().await?;
        Ok(())
    })
    .await;
}
