//! One OpenBao dev server per test process.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fitflow_crypto::{Vault, VaultSettings};
use secrecy::SecretString;
use tokio::sync::OnceCell;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

/// How long the dev server may take to start.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the dev server and a watchdog that kills it once the test process
/// (`FITFLOW_PARENT_PID`) is gone, even if that process is killed.
const LAUNCH_SCRIPT: &str = r#"
"$FITFLOW_BAO_BIN" server -dev -dev-no-store-token \
    -dev-root-token-id="$FITFLOW_BAO_TOKEN" \
    -dev-listen-address="127.0.0.1:$FITFLOW_BAO_PORT" >"$FITFLOW_BAO_LOG" 2>&1 &
bao_pid=$!
while kill -0 "$FITFLOW_PARENT_PID" 2>/dev/null && kill -0 "$bao_pid" 2>/dev/null; do
    sleep 0.5
done
kill "$bao_pid" 2>/dev/null
wait "$bao_pid"
"#;

/// A running OpenBao dev server with transit enabled at `transit` and a
/// key/value (v1) engine at `fitflow-subject-keys`.
pub struct OpenBao {
    /// Its address, `http://127.0.0.1:<port>`.
    pub addr: String,
    /// Its root token.
    pub root_token: SecretString,
    /// The `sh` watchdog that owns the server; it exits with the server.
    _watchdog: Child,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.addr)
            .field("root_token", &"<redacted>")
            .finish()
    }
}

static OPENBAO: OnceCell<OpenBao> = OnceCell::const_new();

/// The test process's OpenBao dev server (binary from `FITFLOW_BAO_BIN`, else
/// `bao` on `PATH`), started on first use on a free 127.0.0.1 port, ready and
/// with transit enabled. It dies when the test process exits.
pub async fn openbao() -> &'static OpenBao {
    OPENBAO.get_or_init(start).await
}

/// Settings that reach the test OpenBao with its root token.
pub async fn vault_settings() -> VaultSettings {
    let bao = openbao().await;
    VaultSettings {
        addr: bao.addr.clone(),
        token: bao.root_token.clone(),
    }
}

/// A client for the test OpenBao with its root token.
pub async fn vault() -> Vault {
    Vault::connect(&vault_settings().await).expect("connect to the test OpenBao")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

async fn start() -> OpenBao {
    let binary = std::env::var("FITFLOW_BAO_BIN").unwrap_or_else(|_| "bao".to_owned());
    let port = free_port();
    let token = format!("test-root-{}", uuid::Uuid::new_v4().simple());
    let log = std::env::temp_dir().join(format!("fitflow-bao-{}-{port}.log", std::process::id()));
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(LAUNCH_SCRIPT)
        .env("FITFLOW_BAO_BIN", &binary)
        .env("FITFLOW_BAO_TOKEN", &token)
        .env("FITFLOW_BAO_PORT", port.to_string())
        .env("FITFLOW_BAO_LOG", &log)
        .env("FITFLOW_PARENT_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start {binary} through sh: {error}"));

    let addr = format!("http://127.0.0.1:{port}");
    let settings = VaultClientSettingsBuilder::default()
        .address(&addr)
        .token(&token)
        .timeout(Some(Duration::from_secs(5)))
        .build()
        .expect("OpenBao client settings");
    let client = VaultClient::new(settings).expect("OpenBao client");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match vaultrs::sys::mount::enable(&client, "transit", "transit", None).await {
            Ok(()) => break,
            Err(ClientError::APIError { code: 400, errors })
                if errors.iter().any(|error| error.contains("already in use")) =>
            {
                break;
            }
            Err(error) if Instant::now() >= deadline => panic!(
                "OpenBao at {addr} did not become ready ({error}); see {}",
                log.display()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    // Clients' own keys (fitflow_crypto::SUBJECT_KEYS_MOUNT): key/value,
    // version 1, so a delete is final.
    match vaultrs::sys::mount::enable(&client, "fitflow-subject-keys", "kv", None).await {
        Ok(()) => {}
        Err(ClientError::APIError { code: 400, errors })
            if errors.iter().any(|error| error.contains("already in use")) => {}
        Err(error) => panic!("enable the subject keys mount on {addr}: {error}"),
    }
    OpenBao {
        addr,
        root_token: SecretString::from(token),
        _watchdog: watchdog,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_server_debug_output_hides_the_root_token() {
        let bao = OpenBao {
            addr: "http://127.0.0.1:1".to_owned(),
            root_token: SecretString::from("very-secret"),
            _watchdog: Command::new("true").spawn().expect("spawn true"),
        };
        assert!(!format!("{bao:?}").contains("very-secret"));
        assert!(bao.root_token.expose_secret().contains("very-secret"));
    }
}
