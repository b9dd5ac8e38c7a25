//! Knot DNS (Debian package `knot`) as a real secondary of a test listener.

use std::{net::SocketAddr, process::Command};

use zonefleet_tsig::Key;

/// Knot DNS's daemon and control tool (Debian package `knot`).
const KNOTD: &str = "/usr/sbin/knotd";
const KNOTC: &str = "/usr/sbin/knotc";

/// A knotd process, stopped when dropped.
pub struct Knot {
    child: std::process::Child,
    dir: std::path::PathBuf,
    /// Where it answers.
    pub address: SocketAddr,
    zone: String,
}

impl Knot {
    /// Starts Knot as a secondary of `primary` for `zone`, transferring with `key` if
    /// given; `name` makes its directory. The port is one that was free for TCP and UDP a
    /// moment before; another test can take it in between, so a Knot that cannot bind it is
    /// started again on another.
    pub fn secondary_of(name: &str, primary: SocketAddr, zone: &str, key: Option<&Key>) -> Self {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-knot-{}", std::process::id()));
        let (key_section, remote_key) = match key {
            Some(key) => (
                format!(
                    "key:\n  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n",
                    name = key.name(),
                    algorithm = key.algorithm(),
                    secret = key.secret_base64(),
                ),
                format!("    key: {}\n", key.name()),
            ),
            None => (String::new(), String::new()),
        };
        for _ in 0..5 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("db")).expect("Knot's scratch directory");
            let port = free_port();
            let config = format!(
                "server:\n  rundir: \"{dir}\"\n  listen: 127.0.0.1@{port}\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n\
                 database:\n  storage: \"{dir}/db\"\n\
                 log:\n  - target: stderr\n    any: info\n\
                 {key_section}\
                 remote:\n  - id: primary\n    address: {ip}@{primary_port}\n{remote_key}\
                 template:\n  - id: default\n    storage: \"{dir}\"\n    zonefile-sync: -1\n\
                 zone:\n  - domain: \"{zone}\"\n    master: primary\n",
                dir = dir.display(),
                ip = primary.ip(),
                primary_port = primary.port(),
            );
            let config_path = dir.join("knot.conf");
            std::fs::write(&config_path, config).expect("knot.conf");
            let log = std::fs::File::create(dir.join("knot.log")).expect("knot.log");
            let child = Command::new(KNOTD)
                .arg("-c")
                .arg(&config_path)
                .stdout(log.try_clone().expect("the log file"))
                .stderr(log)
                .spawn()
                .expect("knotd starts (Debian package knot)");
            let mut knot = Self {
                child,
                dir: dir.clone(),
                address: SocketAddr::from(([127, 0, 0, 1], port)),
                zone: zone.to_owned(),
            };
            // Knot opens its control socket once its listeners are bound; it exits when it
            // cannot bind them.
            for _ in 0..100 {
                if knot.dir.join("knot.sock").exists() {
                    return knot;
                }
                if knot.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            eprintln!("Knot did not start on port {port}:\n{}", knot.log());
        }
        panic!("Knot did not start in 5 attempts");
    }

    /// What Knot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knot.log")).unwrap_or_default()
    }

    /// Asks Knot to check the primary's SOA now.
    pub fn refresh(&self) {
        let status = Command::new(KNOTC)
            .arg("-s")
            .arg(self.dir.join("knot.sock"))
            .args(["zone-refresh", &self.zone])
            .status()
            .expect("knotc runs");
        assert!(status.success(), "knotc zone-refresh failed");
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for TCP and UDP on 127.0.0.1 when asked.
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a TCP port");
        let port = tcp.local_addr().expect("its address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
