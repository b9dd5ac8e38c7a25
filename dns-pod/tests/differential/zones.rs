//! The test zones: loading the master files and the name facts the query generator needs.
//!
//! The zone files under `tests/differential/zones/` are the single source of truth: every
//! server is started from them, and the queries are derived from the names they contain.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::txt::Parser;

/// One parsed zone: its origin and the owner name and type of each of its RRsets.
#[derive(Debug)]
pub struct Zone {
    /// The zone apex, as written in the file name.
    pub origin: Name,
    /// The path of the master file.
    pub path: PathBuf,
    /// `(owner, type)` of every RRset, owners in the case the file writes them.
    pub rrsets: Vec<(Name, RecordType)>,
}

/// All test zones, served together by every server under test.
#[derive(Debug)]
pub struct ZoneSet {
    /// The zones, ordered by origin.
    pub zones: Vec<Zone>,
}

impl ZoneSet {
    /// Loads every `<origin>.zone` file in `dir`; the origin is the file name without `.zone`.
    pub fn load(dir: &Path) -> Self {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading zone directory {}: {e}", dir.display()))
            .map(|entry| entry.expect("reading a zone directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "zone"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no *.zone files in {}", dir.display());
        Self {
            zones: paths.iter().map(|path| parse_zone(path)).collect(),
        }
    }

    /// The zone origins, e.g. `example.com.`.
    pub fn origins(&self) -> impl Iterator<Item = &Name> {
        self.zones.iter().map(|zone| &zone.origin)
    }

    /// Every name that exists in some zone: the owner names plus the empty non-terminals
    /// between them and their apex. Names compare case-insensitively; the first spelling wins.
    pub fn existing_names(&self) -> BTreeSet<Name> {
        let mut names = BTreeSet::new();
        for zone in &self.zones {
            for (owner, _) in &zone.rrsets {
                let mut name = owner.clone();
                while zone.origin.zone_of(&name) {
                    names.insert(name.clone());
                    name = name.base_name();
                }
            }
        }
        names
    }

    /// Owners of NS RRsets below an apex: the delegation points.
    pub fn delegations(&self) -> BTreeSet<Name> {
        self.owners_where(|zone, owner, rtype| rtype == RecordType::NS && *owner != zone.origin)
    }

    /// The names that own a wildcard, e.g. `wild.example.com.` for `*.wild.example.com.`.
    pub fn wildcard_parents(&self) -> BTreeSet<Name> {
        self.owners_where(|_, owner, _| owner.is_wildcard())
            .iter()
            .map(Name::base_name)
            .collect()
    }

    fn owners_where(&self, keep: impl Fn(&Zone, &Name, RecordType) -> bool) -> BTreeSet<Name> {
        self.zones
            .iter()
            .flat_map(|zone| {
                zone.rrsets
                    .iter()
                    .filter(|(owner, rtype)| keep(zone, owner, *rtype))
                    .map(|(owner, _)| owner.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Parses one master file with hickory's zone-file parser.
fn parse_zone(path: &Path) -> Zone {
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .expect("zone file names are UTF-8");
    let origin_text = file_name.strip_suffix(".zone").expect("*.zone file");
    let origin = Name::from_ascii(format!("{origin_text}."))
        .unwrap_or_else(|e| panic!("zone file name {file_name} is not a domain name: {e}"));
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading zone file {}: {e}", path.display()));
    let (parsed_origin, rrsets) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .unwrap_or_else(|e| panic!("parsing zone file {}: {e}", path.display()));
    assert_eq!(
        parsed_origin,
        origin,
        "{} must set $ORIGIN to its file name",
        path.display()
    );
    Zone {
        origin,
        path: path.to_path_buf(),
        rrsets: rrsets
            .values()
            .map(|rrset| (rrset.name().clone(), rrset.record_type()))
            .collect(),
    }
}
