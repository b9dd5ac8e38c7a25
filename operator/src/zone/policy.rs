//! The Zone's rule for which namespaces may attach Records.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use zonefleet_api::{NamespaceSelection, RecordNamespaces};

/// Whether a Record in `record_namespace` may attach to a Zone in `zone_namespace`.
/// `labels` are the Record namespace's labels, needed only for `Selector`.
pub fn namespace_allowed(
    rule: &RecordNamespaces,
    zone_namespace: &str,
    record_namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if record_namespace == zone_namespace {
        return true;
    }
    match rule.from {
        NamespaceSelection::Same => false,
        NamespaceSelection::All => true,
        NamespaceSelection::Selector => match (&rule.selector, labels) {
            (Some(selector), Some(labels)) => selector_matches(selector, labels),
            _ => false,
        },
    }
}

/// Kubernetes label-selector semantics: every `matchLabels` pair and every expression must hold.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    pairs && expressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(value: serde_json::Value) -> RecordNamespaces {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn same_namespace_is_the_default_and_always_allowed() {
        let default = RecordNamespaces::default();
        assert!(namespace_allowed(&default, "dns", "dns", None));
        assert!(!namespace_allowed(&default, "dns", "tenant-b", None));
        assert!(namespace_allowed(
            &rule(json!({"from": "All"})),
            "dns",
            "tenant-b",
            None
        ));
    }

    #[test]
    fn selector_matches_labels_and_expressions() {
        let rule = rule(json!({"from": "Selector", "selector": {
            "matchLabels": {"dns": "allowed"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]},
                                 {"key": "quarantine", "operator": "DoesNotExist"}],
        }}));
        let ok = labels(&[("dns", "allowed"), ("env", "prod")]);
        assert!(namespace_allowed(&rule, "dns", "team", Some(&ok)));
        let wrong_env = labels(&[("dns", "allowed"), ("env", "dev")]);
        assert!(!namespace_allowed(&rule, "dns", "team", Some(&wrong_env)));
        let quarantined = labels(&[("dns", "allowed"), ("env", "prod"), ("quarantine", "1")]);
        assert!(!namespace_allowed(&rule, "dns", "team", Some(&quarantined)));
        assert!(
            !namespace_allowed(&rule, "dns", "team", None),
            "unknown labels never match"
        );
    }
}
