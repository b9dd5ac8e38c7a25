//! The three servers under test, each a child process owned by the test.
//!
//! Every server gets its own scratch directory (under Cargo's per-target temporary directory)
//! with a copy of the zone files, a free port on 127.0.0.1 for UDP and TCP, and a stderr log.
//! [`Server`] kills the whole process group and removes the directory on drop, so nothing is
//! left behind when the test passes, fails or panics.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::client;
use crate::queries::{QuerySpec, Transport};
use crate::zones::ZoneSet;

/// NSD's daemon, from the Debian package `nsd`.
const NSD: &str = "/usr/sbin/nsd";
/// NSD's configuration checker, from the Debian package `nsd`.
const NSD_CHECKCONF: &str = "/usr/sbin/nsd-checkconf";
/// Knot DNS's daemon, from the Debian package `knot`.
const KNOTD: &str = "/usr/sbin/knotd";

/// How long a server may take to answer the SOA of every zone after it was spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running DNS server, killed (with its whole process group) on drop.
#[derive(Debug)]
pub struct Server {
    /// A short name for reports: `nsd`, `knot` or `dns-pod`.
    pub name: &'static str,
    /// The UDP and TCP address it listens on.
    pub addr: SocketAddr,
    child: Child,
    stderr_path: PathBuf,
    // Declared last so it is removed after the process is gone.
    _scratch: ScratchDir,
}

impl Server {
    /// Starts NSD on the test zones.
    ///
    /// The configuration matters for the comparison:
    /// - `minimal-responses: yes`: without it NSD fills positive answers with the zone's NS
    ///   RRset in the authority section (and their addresses in the additional section);
    ///   Knot and dns-pod answer minimally.
    /// - `confine-to-zone: yes`: without it NSD follows a CNAME into another zone it serves
    ///   and adds the target's records; Knot stops at the zone boundary. (A CNAME into a
    ///   child zone that the parent delegates still differs: Knot follows it inside the
    ///   parent and adds the delegation as a referral, NSD stops; no option aligns that.)
    /// - `rrl-ratelimit: 0`, `rrl-whitelist-ratelimit: 0`: NSD's response rate limiting is on
    ///   by default (200 qps per source) and answers the test's query burst with TC=1 "slips"
    ///   or drops.
    /// - `refuse-any: no`, `round-robin: no`: ordinary ANY handling, no record rotation.
    /// - `username: ""` (no privilege drop), `database: ""` and every state file in the
    ///   scratch directory, so it runs in the foreground (`-d`) without touching /var or /run.
    pub fn start_nsd(zones: &ZoneSet) -> Self {
        require_binary(NSD, "nsd");
        require_binary(NSD_CHECKCONF, "nsd");
        let scratch = ScratchDir::new("nsd");
        let zone_dir = scratch.copy_zones(zones);
        let addr = free_local_addr();
        let config = scratch.path().join("nsd.conf");
        fs::write(&config, nsd_config(scratch.path(), &zone_dir, addr, zones))
            .expect("writing nsd.conf");
        check_nsd_config(&config);
        let mut command = Command::new(NSD);
        command.arg("-d").arg("-c").arg(&config);
        Self::spawn("nsd", command, addr, scratch, zones)
    }

    /// Starts Knot DNS on the test zones.
    ///
    /// Knot answers minimally by default. The configuration only keeps it to the scratch
    /// directory: `rundir` and `database.storage` there, zone files read whole
    /// (`zonefile-load: whole`) and never written back (`zonefile-sync: -1`), no journal
    /// (`journal-content: none`), and no `user`, so it does not switch users.
    pub fn start_knot(zones: &ZoneSet) -> Self {
        require_binary(KNOTD, "knot");
        let scratch = ScratchDir::new("knot");
        let zone_dir = scratch.copy_zones(zones);
        let addr = free_local_addr();
        let storage = scratch.path().join("db");
        fs::create_dir_all(&storage).expect("creating Knot's database directory");
        let config = scratch.path().join("knot.conf");
        fs::write(
            &config,
            knot_config(scratch.path(), &storage, &zone_dir, addr, zones),
        )
        .expect("writing knot.conf");
        let mut command = Command::new(KNOTD);
        command.arg("-c").arg(&config);
        Self::spawn("knot", command, addr, scratch, zones)
    }

    /// Starts the dns-pod binary in static mode on the test zones.
    pub fn start_dns_pod(zones: &ZoneSet) -> Self {
        let binary = env!("CARGO_BIN_EXE_zonefleet-dns-pod");
        let scratch = ScratchDir::new("dns-pod");
        let zone_dir = scratch.copy_zones(zones);
        let addr = free_local_addr();
        let mut command = Command::new(binary);
        command
            .arg("--zones-dir")
            .arg(&zone_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-address")
            .arg("127.0.0.1:0");
        Self::spawn("dns-pod", command, addr, scratch, zones)
    }

    /// Spawns `command` in its own process group, stderr and stdout to a log file, and waits
    /// until it serves the SOA of every zone.
    fn spawn(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
        scratch: ScratchDir,
        zones: &ZoneSet,
    ) -> Self {
        let stderr_path = scratch.path().join("stderr.log");
        let log = File::create(&stderr_path).expect("creating the server log");
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log file handle"))
            .stderr(log)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        let mut server = Self {
            name,
            addr,
            child,
            stderr_path,
            _scratch: scratch,
        };
        server.wait_until_ready(zones);
        server
    }

    /// Polls the SOA of every zone until each is answered authoritatively with NOERROR.
    fn wait_until_ready(&mut self, zones: &ZoneSet) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<_> = zones.origins().cloned().collect();
        let mut last_answer = String::from("nothing yet");
        while !pending.is_empty() {
            if let Some(status) = self.child.try_wait().expect("polling the server process") {
                panic!(
                    "{} exited before it was ready ({status}); its output:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer SOA queries for {pending:?} on {} within {READY_TIMEOUT:?} \
                 (last answer: {last_answer}); its output:\n{}",
                self.name,
                self.addr,
                self.stderr()
            );
            let probe = QuerySpec {
                name: pending[0].clone(),
                qtype: RecordType::SOA,
                transport: Transport::Udp,
                edns: true,
                out_of_zone: false,
            };
            match client::exchange(self.addr, &probe, 0xbeef) {
                Ok(response)
                    if response.metadata.response_code == ResponseCode::NoError
                        && response.metadata.authoritative =>
                {
                    pending.remove(0);
                    continue;
                }
                Ok(response) => last_answer = format!("{}", response.metadata.response_code),
                Err(e) => last_answer = e,
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.stderr_path.display()))
    }
}

impl Drop for Server {
    /// SIGTERM to the server's process group (NSD forks workers), SIGKILL to the group if the
    /// leader has not exited in time.
    fn drop(&mut self) {
        let Ok(raw_pid) = i32::try_from(self.child.id()) else {
            return;
        };
        let group = Pid::from_raw(raw_pid);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            // NSD's leader stops its workers before it exits; once the leader is reaped the
            // group id is no longer ours to signal.
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Panics, naming the Debian package, when a reference server is not installed.
fn require_binary(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: the differential test needs the Debian package `{package}` \
         (apt-get install -y {package}); it never skips"
    );
}

/// Validates the generated nsd.conf with `nsd-checkconf`.
fn check_nsd_config(config: &Path) {
    let output = Command::new(NSD_CHECKCONF)
        .arg(config)
        .output()
        .expect("running nsd-checkconf");
    assert!(
        output.status.success(),
        "nsd-checkconf rejected {}:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// NSD 4.x configuration; see [`Server::start_nsd`] for why each option is set.
fn nsd_config(scratch: &Path, zone_dir: &Path, addr: SocketAddr, zones: &ZoneSet) -> String {
    let dir = scratch.display();
    let mut config = format!(
        r#"server:
  ip-address: {ip}@{port}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{zone_dir}"
  database: ""
  pidfile: "{dir}/nsd.pid"
  zonelistfile: "{dir}/zone.list"
  xfrdfile: "{dir}/xfrd.state"
  xfrdir: "{dir}"
  verbosity: 1
  hide-version: yes
  minimal-responses: yes
  confine-to-zone: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  refuse-any: no
  round-robin: no
remote-control:
  control-enable: no
"#,
        ip = addr.ip(),
        port = addr.port(),
        zone_dir = zone_dir.display(),
    );
    for zone in &zones.zones {
        config.push_str(&format!(
            "zone:\n  name: \"{}\"\n  zonefile: \"{}\"\n",
            zone.origin,
            zone_file_name(zone)
        ));
    }
    config
}

/// Knot DNS 3.x configuration; see [`Server::start_knot`].
fn knot_config(
    scratch: &Path,
    storage: &Path,
    zone_dir: &Path,
    addr: SocketAddr,
    zones: &ZoneSet,
) -> String {
    let mut config = format!(
        r#"server:
  rundir: "{rundir}"
  listen: {ip}@{port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: "{storage}"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "{zone_dir}"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
zone:
"#,
        rundir = scratch.display(),
        ip = addr.ip(),
        port = addr.port(),
        storage = storage.display(),
        zone_dir = zone_dir.display(),
    );
    for zone in &zones.zones {
        config.push_str(&format!(
            "  - domain: \"{}\"\n    file: \"{}\"\n",
            zone.origin,
            zone_file_name(zone)
        ));
    }
    config
}

fn zone_file_name(zone: &crate::zones::Zone) -> String {
    zone.path
        .file_name()
        .expect("zone files have a name")
        .to_string_lossy()
        .into_owned()
}

/// A free port on 127.0.0.1, checked free for both UDP and TCP.
///
/// The port is released before the server binds it, so another process could take it in
/// between; on a test machine that race is rare and shows up as a clear startup failure.
fn free_local_addr() -> SocketAddr {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP probe socket");
        let addr = udp.local_addr().expect("probe socket address");
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("found no port on 127.0.0.1 that is free for both UDP and TCP");
}

/// A scratch directory under Cargo's target tmp dir, removed on drop.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(label: &str) -> Self {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("differential-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating scratch dir {}: {e}", path.display()));
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Copies every zone file into `<scratch>/zones/` and returns that directory.
    fn copy_zones(&self, zones: &ZoneSet) -> PathBuf {
        let dir = self.0.join("zones");
        fs::create_dir_all(&dir).expect("creating the zone copy directory");
        for zone in &zones.zones {
            fs::copy(&zone.path, dir.join(zone_file_name(zone)))
                .unwrap_or_else(|e| panic!("copying {}: {e}", zone.path.display()));
        }
        dir
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
