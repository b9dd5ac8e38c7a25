//! A real nats-server with JetStream (the one `e2e/tools.sh` builds) for tests.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use tokio::{
    net::TcpStream,
    process::{Child, Command},
};

/// How long the server may take to start.
const WAIT: Duration = Duration::from_secs(20);

/// The nats-server binary, if built.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../e2e/tools.sh");
    let output = std::process::Command::new("bash")
        .arg(tools)
        .args(["path", "nats-server"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    path.is_file().then_some(path)
}

/// A nats-server with JetStream on 127.0.0.1, its store in a directory of its own; killed
/// and removed on drop.
pub struct Nats {
    _child: Child,
    dir: PathBuf,
    /// Its URL.
    pub url: String,
}

impl Nats {
    /// Starts one; `name` makes its store directory.
    pub async fn start(binary: &PathBuf, name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("zonefleet-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the store directory");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting nats-server");
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = tokio::time::Instant::now() + WAIT;
        while TcpStream::connect(address).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            _child: child,
            dir,
            url: format!("nats://{address}"),
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
