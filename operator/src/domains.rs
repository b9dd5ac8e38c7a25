//! Who owns a domain: one Zone per domain cluster-wide, and child zones in other namespaces
//! only where the parent delegates them.
//!
//! Pure: the controller turns every Zone in its store into a [`Claim`] and asks for the
//! [`Standing`] of the one it reconciles. The rules:
//! 1. Domains compare case-insensitively, with or without the trailing dot.
//! 2. Of the Zones for one domain that are not being deleted, the oldest (creation time,
//!    then — within the same second — the one already serving, then namespace and name)
//!    owns it; every other one is in conflict. A Zone being
//!    deleted owns nothing, so its successor takes over while it goes.
//! 3. A Zone inside the domain of an owning Zone in another namespace (its nearest
//!    enclosing owner) needs that parent's permission (`spec.delegations`) — unless it is
//!    older than the parent: a Zone that was there first is never displaced by a new one.
//! 4. An owner's child zones (owners nested directly inside its domain, not in conflict
//!    with it) are cuts in its own data.

use hickory_proto::rr::Name;
use k8s_openapi::jiff::Timestamp;
use zonefleet_api::Zone;

use crate::zone::{ObjectKey, names};

/// What the ownership rules need of one Zone.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The Zone.
    pub key: ObjectKey,
    /// Its domain, lowercased and fully qualified.
    pub domain: Name,
    /// When it was created.
    pub created: Option<Timestamp>,
    /// True once it is being deleted.
    pub deleting: bool,
    /// True if it has published a version of its domain (its status has a serial).
    pub serving: bool,
    /// The child domains it delegates, absolute and lowercased, with the namespaces allowed.
    pub delegations: Vec<(Name, Vec<String>)>,
}

impl Claim {
    /// The claim of a Zone, or None when its domain is no DNS name (the assembly reports
    /// that on the Zone itself).
    pub fn of(zone: &Zone) -> Option<Self> {
        let domain = names::absolute(&zone.spec.domain).ok()?.to_lowercase();
        let delegations = zone
            .spec
            .delegations
            .iter()
            .filter_map(|d| {
                // `mx1.example.com` in `example.com` means what it says, as a delegation.
                let name = match names::unambiguous(&d.name, &domain) {
                    Ok(()) => names::owner(&d.name, &domain),
                    Err(ambiguous) => names::absolute(&ambiguous.absolute),
                };
                Some((name.ok()?.to_lowercase(), d.namespaces.clone()))
            })
            .collect();
        Some(Self {
            key: ObjectKey::of(zone),
            domain,
            created: zone.metadata.creation_timestamp.as_ref().map(|t| t.0),
            deleting: zone.metadata.deletion_timestamp.is_some(),
            serving: zone.status.as_ref().is_some_and(|s| s.serial.is_some()),
            delegations,
        })
    }

    /// Older first. Creation times have whole seconds only: of two Zones created in the same
    /// second, the one already serving the domain counts as older, so a newcomer never takes
    /// over a served domain by the order of its name.
    fn age_key(&self) -> (Option<Timestamp>, bool, &ObjectKey) {
        (self.created, !self.serving, &self.key)
    }

    fn older_than(&self, other: &Claim) -> bool {
        self.age_key() < other.age_key()
    }

    fn delegates(&self, child: &Claim) -> bool {
        self.delegations.iter().any(|(name, namespaces)| {
            name.zone_of(&child.domain) && namespaces.contains(&child.key.namespace)
        })
    }
}

/// Why a Zone does not own its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// An older Zone holds the same domain.
    SameDomain {
        /// The owner.
        owner: ObjectKey,
        /// The domain.
        domain: String,
    },
    /// The enclosing Zone, in another namespace, does not delegate this domain to this
    /// Zone's namespace.
    NotDelegated {
        /// The enclosing Zone.
        parent: ObjectKey,
        /// Its domain.
        parent_domain: String,
    },
}

impl Conflict {
    /// A message for the Zone's condition and Event.
    pub fn message(&self, me: &Claim) -> String {
        match self {
            Conflict::SameDomain { owner, domain } => format!(
                "the domain {domain} belongs to Zone {owner}, which is older; this Zone publishes nothing until that one is deleted"
            ),
            Conflict::NotDelegated {
                parent,
                parent_domain,
            } => format!(
                "{} lies inside {parent_domain}, which belongs to Zone {parent} in another namespace; that Zone's spec.delegations must name {} (or a name above it) with namespace {}",
                me.domain, me.domain, me.key.namespace
            ),
        }
    }
}

/// What a Zone may do with its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// It owns its domain; the apexes of its child zones are cuts in its data.
    Owner {
        /// Child zone apexes, with the Zone that serves each.
        child_zones: Vec<(Name, ObjectKey)>,
    },
    /// It does not.
    Conflict(Conflict),
}

/// The owner of `domain` among `claims`: the oldest live one.
fn owner_of<'a>(domain: &Name, claims: &'a [Claim]) -> Option<&'a Claim> {
    claims
        .iter()
        .filter(|c| !c.deleting && c.domain == *domain)
        .min_by(|a, b| a.age_key().cmp(&b.age_key()))
}

/// True if `claim` owns its domain.
fn owns(claim: &Claim, claims: &[Claim]) -> bool {
    owner_of(&claim.domain, claims).is_some_and(|owner| owner.key == claim.key)
}

/// The owner of the nearest domain strictly above `claim`'s.
fn parent_of<'a>(claim: &Claim, claims: &'a [Claim]) -> Option<&'a Claim> {
    let mut domain = claim.domain.base_name();
    loop {
        if let Some(owner) = owner_of(&domain, claims) {
            return Some(owner);
        }
        if domain.is_root() {
            return None;
        }
        domain = domain.base_name();
    }
}

/// Why `claim` (which owns its domain) may not serve it under `parent`, if it may not.
fn refused_by(claim: &Claim, parent: &Claim) -> Option<Conflict> {
    let allowed = parent.key.namespace == claim.key.namespace
        || claim.older_than(parent)
        || parent.delegates(claim);
    (!allowed).then(|| Conflict::NotDelegated {
        parent: parent.key.clone(),
        parent_domain: parent.domain.to_ascii(),
    })
}

/// The standing of `me` among `claims` (which may include `me`).
pub fn standing(me: &Claim, claims: &[Claim]) -> Standing {
    if me.deleting || !owns(me, claims) {
        let owner = owner_of(&me.domain, claims).filter(|o| o.key != me.key);
        return match owner {
            Some(owner) => Standing::Conflict(Conflict::SameDomain {
                owner: owner.key.clone(),
                domain: me.domain.to_ascii(),
            }),
            // Being deleted with no successor: nothing to conflict with.
            None => Standing::Owner {
                child_zones: Vec::new(),
            },
        };
    }
    if let Some(conflict) = parent_of(me, claims).and_then(|parent| refused_by(me, parent)) {
        return Standing::Conflict(conflict);
    }
    let mut child_zones: Vec<(Name, ObjectKey)> = claims
        .iter()
        .filter(|c| c.domain != me.domain && me.domain.zone_of(&c.domain) && owns(c, claims))
        .filter(|c| parent_of(c, claims).is_some_and(|p| p.key == me.key))
        .filter(|c| refused_by(c, me).is_none())
        .map(|c| (c.domain.clone(), c.key.clone()))
        .collect();
    child_zones.sort();
    Standing::Owner { child_zones }
}

/// The live Zone that takes over `me`'s domain once `me` is gone, if any.
pub fn successor<'a>(me: &Claim, claims: &'a [Claim]) -> Option<&'a Claim> {
    claims
        .iter()
        .filter(|c| c.key != me.key && !c.deleting && c.domain == me.domain)
        .min_by(|a, b| a.age_key().cmp(&b.age_key()))
}

/// The Zones whose standing may change when `me` appears, changes or goes: those for the
/// same domain, above it or below it.
pub fn related<'a>(me: &'a Claim, claims: &'a [Claim]) -> impl Iterator<Item = &'a ObjectKey> {
    claims.iter().filter_map(move |c| {
        let related =
            c.key != me.key && (c.domain.zone_of(&me.domain) || me.domain.zone_of(&c.domain));
        related.then_some(&c.key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(namespace: &str, name: &str, domain: &str, age: i64) -> Claim {
        Claim {
            key: ObjectKey {
                namespace: namespace.into(),
                name: name.into(),
            },
            domain: names::absolute(domain).unwrap().to_lowercase(),
            created: Some(Timestamp::from_second(1_800_000_000 + age).unwrap()),
            deleting: false,
            serving: false,
            delegations: Vec::new(),
        }
    }

    fn key(namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn the_oldest_zone_owns_a_domain_whatever_its_case() {
        let owner = claim("a", "owner", "owned.test", 0);
        let late = claim("b", "late", "OWNED.Test.", 10);
        let claims = [owner.clone(), late.clone()];
        assert!(matches!(standing(&owner, &claims), Standing::Owner { .. }));
        assert_eq!(
            standing(&late, &claims),
            Standing::Conflict(Conflict::SameDomain {
                owner: key("a", "owner"),
                domain: "owned.test.".into()
            })
        );
    }

    #[test]
    fn a_zone_being_deleted_hands_its_domain_to_the_next_oldest() {
        let mut old = claim("a", "old", "owned.test", 0);
        let new = claim("a", "new", "owned.test", 10);
        let claims = [old.clone(), new.clone()];
        assert!(matches!(standing(&new, &claims), Standing::Conflict(_)));
        old.deleting = true;
        let claims = [old.clone(), new.clone()];
        assert!(matches!(standing(&new, &claims), Standing::Owner { .. }));
        assert_eq!(successor(&old, &claims).map(|c| &c.key), Some(&new.key));
        assert!(
            matches!(standing(&old, &claims), Standing::Conflict(_)),
            "a Zone being deleted with a successor owns nothing"
        );
        let alone = [old.clone()];
        assert!(successor(&old, &alone).is_none());
    }

    #[test]
    fn a_child_zone_in_another_namespace_needs_the_parents_delegation() {
        let mut parent = claim("acme", "acme", "acme.test", 0);
        let child = claim("mail", "mx1", "mx1.acme.test", 10);
        let claims = [parent.clone(), child.clone()];
        assert_eq!(
            standing(&child, &claims),
            Standing::Conflict(Conflict::NotDelegated {
                parent: key("acme", "acme"),
                parent_domain: "acme.test.".into()
            })
        );
        assert_eq!(
            standing(&parent, &claims),
            Standing::Owner {
                child_zones: Vec::new()
            },
            "a refused child is no cut in the parent"
        );
        // Delegating a name above the child, to another namespace, is not enough.
        parent.delegations = vec![(
            names::absolute("mx1.acme.test").unwrap(),
            vec!["other".into()],
        )];
        assert!(matches!(
            standing(&child, &[parent.clone(), child.clone()]),
            Standing::Conflict(_)
        ));
        parent.delegations = vec![(names::absolute("acme.test").unwrap(), vec!["mail".into()])];
        let claims = [parent.clone(), child.clone()];
        assert!(matches!(standing(&child, &claims), Standing::Owner { .. }));
        assert_eq!(
            standing(&parent, &claims),
            Standing::Owner {
                child_zones: vec![(child.domain.clone(), child.key.clone())]
            }
        );
    }

    #[test]
    fn child_zones_in_the_same_namespace_and_older_ones_are_allowed() {
        let parent = claim("acme", "acme", "acme.test", 10);
        let same = claim("acme", "eu", "eu.acme.test", 20);
        let older = claim("legacy", "old", "old.acme.test", 0);
        let claims = [parent.clone(), same.clone(), older.clone()];
        assert!(matches!(standing(&same, &claims), Standing::Owner { .. }));
        assert!(matches!(standing(&older, &claims), Standing::Owner { .. }));
        let Standing::Owner { child_zones } = standing(&parent, &claims) else {
            panic!("the parent owns its domain");
        };
        assert_eq!(child_zones.len(), 2);
    }

    #[test]
    fn only_the_nearest_enclosing_zone_decides_and_only_direct_children_are_cuts() {
        let mut top = claim("a", "top", "test", 0);
        let mut middle = claim("b", "middle", "b.test", 1);
        let leaf = claim("c", "leaf", "c.b.test", 2);
        top.delegations = vec![(names::absolute("b.test").unwrap(), vec!["b".into()])];
        let claims = [top.clone(), middle.clone(), leaf.clone()];
        assert!(matches!(standing(&middle, &claims), Standing::Owner { .. }));
        assert!(
            matches!(standing(&leaf, &claims), Standing::Conflict(Conflict::NotDelegated { ref parent, .. }) if *parent == middle.key)
        );
        middle.delegations = vec![(names::absolute("c.b.test").unwrap(), vec!["c".into()])];
        let claims = [top.clone(), middle.clone(), leaf.clone()];
        assert!(matches!(standing(&leaf, &claims), Standing::Owner { .. }));
        assert_eq!(
            standing(&top, &claims),
            Standing::Owner {
                child_zones: vec![(middle.domain.clone(), middle.key.clone())]
            }
        );
    }

    #[test]
    fn related_zones_are_above_below_and_beside() {
        let me = claim("a", "me", "acme.test", 0);
        let claims = [
            me.clone(),
            claim("b", "same", "acme.test", 1),
            claim("c", "child", "x.acme.test", 2),
            claim("d", "parent", "test", 3),
            claim("e", "other", "other.test", 4),
        ];
        let related: Vec<&str> = related(&me, &claims).map(|k| k.name.as_str()).collect();
        assert_eq!(related, ["same", "child", "parent"]);
    }

    #[test]
    fn delegation_names_are_relative_or_absolute() {
        let zone: Zone = serde_json::from_value(serde_json::json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
            "metadata": {"name": "acme", "namespace": "acme"},
            "spec": {
                "domain": "Acme.Test", "nameServers": [{"name": "ns.example.net"}],
                "delegations": [
                    {"name": "mx1", "namespaces": ["mail"]},
                    {"name": "eu.acme.test", "namespaces": ["eu"]},
                    {"name": "us.acme.test.", "namespaces": ["us"]},
                ],
            },
        }))
        .unwrap();
        let claim = Claim::of(&zone).unwrap();
        assert_eq!(claim.domain.to_ascii(), "acme.test.");
        let names: Vec<String> = claim
            .delegations
            .iter()
            .map(|(name, _)| name.to_ascii())
            .collect();
        assert_eq!(names, ["mx1.acme.test.", "eu.acme.test.", "us.acme.test."]);
    }

    #[test]
    fn in_the_same_second_the_zone_already_serving_keeps_the_domain() {
        let mut owner = claim("zz-owner", "owner", "owned.test", 0);
        let intruder = claim("aa-intruder", "intruder", "owned.test", 0);
        let claims = [owner.clone(), intruder.clone()];
        assert!(
            matches!(standing(&intruder, &claims), Standing::Owner { .. }),
            "with nothing served yet, the name decides"
        );
        owner.serving = true;
        let claims = [owner.clone(), intruder.clone()];
        assert!(matches!(standing(&owner, &claims), Standing::Owner { .. }));
        assert!(matches!(
            standing(&intruder, &claims),
            Standing::Conflict(Conflict::SameDomain { .. })
        ));
    }
}
