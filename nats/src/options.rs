//! Connection flags and connecting.

use std::{path::PathBuf, time::Duration};

use async_nats::{Client, ConnectOptions, Event};
use clap::Args;

use crate::Layout;

/// How to reach NATS. Every flag also reads an environment variable, so credentials can come
/// from a Secret.
#[derive(Clone, Debug, Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long = "nats-url", env = "NATS_URL", value_name = "URL")]
    pub url: Option<String>,

    /// User name (with --nats-password).
    #[arg(long = "nats-user", env = "NATS_USER")]
    pub user: Option<String>,

    /// Password (with --nats-user).
    #[arg(long = "nats-password", env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Authentication token.
    #[arg(long = "nats-token", env = "NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// A credentials file (JWT and nkey seed), as `nsc` writes it.
    #[arg(long = "nats-creds", env = "NATS_CREDS", value_name = "FILE")]
    pub creds: Option<PathBuf>,

    /// CA certificate (PEM) to verify the server with; implies TLS.
    #[arg(long = "nats-tls-ca", env = "NATS_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS, with --nats-tls-key.
    #[arg(long = "nats-tls-cert", env = "NATS_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Client key (PEM) for mutual TLS, with --nats-tls-cert.
    #[arg(long = "nats-tls-key", env = "NATS_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Require TLS even without a CA or client certificate.
    #[arg(long = "nats-tls-required", env = "NATS_TLS_REQUIRED")]
    pub tls_required: bool,

    /// A file holding a shared key (at least 32 bytes): the operator signs events and
    /// snapshots with it, and the pods refuse anything unsigned or signed wrongly.
    #[arg(
        long = "nats-message-key-file",
        env = "ZONEFLEET_MESSAGE_KEY_FILE",
        value_name = "FILE"
    )]
    pub message_key_file: Option<PathBuf>,

    /// The prefix of every subject, stream and bucket Zonefleet uses.
    #[arg(
        long = "nats-prefix",
        env = "ZONEFLEET_NATS_PREFIX",
        default_value = "zonefleet"
    )]
    pub prefix: String,
}

/// A connection that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No URL was given.
    #[error("no NATS URL: pass --nats-url or set NATS_URL")]
    NoUrl,
    /// Contradictory or incomplete flags.
    #[error("{0}")]
    Flags(&'static str),
    /// The credentials file cannot be read.
    #[error("cannot read the NATS credentials file: {0}")]
    Creds(std::io::Error),
    /// The prefix cannot name subjects.
    #[error(transparent)]
    Prefix(#[from] crate::LayoutError),
    /// The client refused the options.
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
}

impl NatsArgs {
    /// The names under the prefix.
    pub fn layout(&self) -> Result<Layout, crate::LayoutError> {
        Layout::new(&self.prefix)
    }

    /// The message key, if one is configured.
    pub fn message_key(&self) -> Result<Option<crate::MessageKey>, crate::KeyError> {
        self.message_key_file
            .as_deref()
            .map(crate::MessageKey::from_file)
            .transpose()
    }

    /// Connects as `name`. The first connection is retried until NATS answers, and the
    /// client reconnects forever; `on_event` sees every connection event.
    pub async fn connect<F, Fut>(&self, name: &str, on_event: F) -> Result<Client, ConnectError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + Sync + 'static,
    {
        let url = self.url.clone().ok_or(ConnectError::NoUrl)?;
        let options = self.options(name).await?.event_callback(on_event);
        Ok(options.connect(url).await?)
    }

    async fn options(&self, name: &str) -> Result<ConnectOptions, ConnectError> {
        let mut options = ConnectOptions::new();
        options = match (&self.user, &self.password, &self.token, &self.creds) {
            (Some(user), Some(password), None, None) => {
                options.user_and_password(user.clone(), password.clone())
            }
            (None, None, Some(token), None) => options.token(token.clone()),
            (None, None, None, Some(creds)) => options
                .credentials_file(creds)
                .await
                .map_err(ConnectError::Creds)?,
            (None, None, None, None) => options,
            (Some(_), None, _, _) | (None, Some(_), _, _) => {
                return Err(ConnectError::Flags(
                    "--nats-user and --nats-password go together",
                ));
            }
            _ => {
                return Err(ConnectError::Flags(
                    "choose one of user/password, token or credentials file",
                ));
            }
        };
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                options = options
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(ConnectError::Flags(
                    "--nats-tls-cert and --nats-tls-key go together",
                ));
            }
        }
        if self.tls_required {
            options = options.require_tls(true);
        }
        Ok(options
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5)))
    }
}
