//! The DNS pods, as the EndpointSlices of the DNS Service list them: a pure function from
//! slices to the ready endpoints.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// One ready DNS pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DnsEndpoint {
    /// The pod's name (from the endpoint's targetRef).
    pub pod: String,
    /// Its address.
    pub address: IpAddr,
    /// Its DNS port.
    pub dns_port: u16,
    /// Its admin port (`/zones`), if the Service names one.
    pub admin_port: Option<u16>,
}

/// The names of the Service ports to use.
#[derive(Clone, Debug)]
pub struct PortNames {
    /// The DNS port (UDP and TCP share the number).
    pub dns: String,
    /// The admin HTTP port.
    pub admin: String,
}

/// Every ready endpoint of `slices` that has the DNS port and names a Pod, by pod name. An
/// endpoint counts as ready unless its `ready` condition is false and it is not terminating
/// (the EndpointSlice API's rule). A pod listed in several slices (dual stack) is taken once,
/// with its first address.
pub fn ready_endpoints(
    slices: &[EndpointSlice],
    ports: &PortNames,
) -> BTreeMap<String, DnsEndpoint> {
    let mut endpoints = BTreeMap::new();
    for slice in slices {
        let port = |name: &str| {
            slice.ports.iter().flatten().find_map(|p| {
                (p.name.as_deref() == Some(name))
                    .then_some(p.port)
                    .flatten()
                    .and_then(|port| u16::try_from(port).ok())
            })
        };
        let Some(dns_port) = port(&ports.dns) else {
            continue;
        };
        let admin_port = port(&ports.admin);
        for endpoint in slice.endpoints.iter().flatten() {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            let terminating = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.terminating)
                .unwrap_or(false);
            if !ready || terminating {
                continue;
            }
            let Some(pod) = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone())
            else {
                continue;
            };
            let Some(address) = endpoint.addresses.iter().find_map(|a| a.parse().ok()) else {
                continue;
            };
            endpoints.entry(pod.clone()).or_insert(DnsEndpoint {
                pod,
                address,
                dns_port,
                admin_port,
            });
        }
    }
    endpoints
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slice(ports: serde_json::Value, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "dns-abc", "labels": {"kubernetes.io/service-name": "dns"}},
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn names() -> PortNames {
        PortNames {
            dns: "dns".into(),
            admin: "admin".into(),
        }
    }

    #[test]
    fn ready_pods_with_the_dns_port_are_endpoints() {
        let slices = [slice(
            json!([{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "admin", "port": 8080}]),
            json!([
                {"addresses": ["198.18.0.2"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "dns-1"}},
                {"addresses": ["198.18.0.3"], "conditions": {"ready": false},
                 "targetRef": {"kind": "Pod", "name": "dns-2"}},
                {"addresses": ["198.18.0.4"], "conditions": {"ready": true, "terminating": true},
                 "targetRef": {"kind": "Pod", "name": "dns-3"}},
                {"addresses": ["198.18.0.5"], "targetRef": {"kind": "Pod", "name": "dns-4"}},
                {"addresses": ["198.18.0.6"], "conditions": {"ready": true}},
            ]),
        )];
        let endpoints = ready_endpoints(&slices, &names());
        assert_eq!(endpoints.keys().collect::<Vec<_>>(), ["dns-1", "dns-4"]);
        assert_eq!(
            endpoints["dns-1"],
            DnsEndpoint {
                pod: "dns-1".into(),
                address: "198.18.0.2".parse().unwrap(),
                dns_port: 5353,
                admin_port: Some(8080),
            }
        );
    }

    #[test]
    fn a_slice_without_the_dns_port_contributes_nothing() {
        let slices = [slice(
            json!([{"name": "metrics", "port": 9090}]),
            json!([{"addresses": ["198.18.0.2"], "conditions": {"ready": true},
                    "targetRef": {"kind": "Pod", "name": "dns-1"}}]),
        )];
        assert!(ready_endpoints(&slices, &names()).is_empty());
    }
}
