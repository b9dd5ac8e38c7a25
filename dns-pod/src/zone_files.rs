//! Static mode: zones read from RFC 1035 master files, `DIR/<origin>.zone`.

use std::path::{Path, PathBuf};

use hickory_proto::{
    rr::{Name, Record},
    serialize::txt::Parser,
};
use zonefleet_wire::Snapshot;

/// A zone file that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    /// The directory or a file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file name does not make an origin.
    #[error("{0}: the file name is not <origin>.zone")]
    Name(PathBuf),
    /// The master file does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// Reads every `*.zone` file of `dir`, sorted by name.
pub fn read_dir(dir: &Path) -> Result<Vec<Snapshot>, ZoneFileError> {
    let read_error = |source| ZoneFileError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "zone"))
        .collect();
    paths.sort();
    paths.iter().map(|path| read_file(path)).collect()
}

/// Reads one zone file; its origin is the file name without `.zone`.
pub fn read_file(path: &Path) -> Result<Snapshot, ZoneFileError> {
    let origin = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| Name::from_ascii(stem).ok())
        .map(|mut name| {
            name.set_fqdn(true);
            name
        })
        .ok_or_else(|| ZoneFileError::Name(path.to_owned()))?;
    let text = std::fs::read_to_string(path).map_err(|source| ZoneFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, origin, Some(path.to_owned())).map_err(|message| ZoneFileError::Parse {
        path: path.to_owned(),
        message,
    })
}

/// Parses master-file text into a snapshot of the zone `origin`, with its digest.
pub fn parse(text: &str, origin: Name, path: Option<PathBuf>) -> Result<Snapshot, String> {
    let (_, rrsets) = Parser::new(text, path, Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    let records: Vec<Record> = rrsets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect();
    let serial = records
        .iter()
        .find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) if r.name == origin => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| format!("the zone {origin} has no SOA record at its apex"))?;
    Ok(Snapshot {
        digest: zonefleet_wire::zone_digest(&origin, &records).to_vec(),
        origin,
        serial,
        records,
    })
}
