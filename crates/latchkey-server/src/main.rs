//! The `latchkey-server` command.
//!
//! - `latchkey-server serve --config FILE`: serve the configured apps.
//! - `latchkey-server migrate --config FILE`: bring the configured database's schema up
//!   to date, and exit (`serve` migrates too; this runs the migrations alone, e.g. before
//!   upgrading the nodes of a cluster).
//! - `latchkey-server dev`: a throwaway loopback server with one app and every provider on.
//! - `latchkey-server init [--out FILE]`: write a commented configuration with fresh secrets.
//! - `latchkey-server admin --config FILE <op>`: administer the configured database
//!   directly (same operations as the admin HTTP API), printing JSON.
//! - `latchkey-server keys generate [--algorithm ES256] [--out FILE]`: a fresh private
//!   key and its `[[apps.signing_keys]]` entry.
//! - `latchkey-server keys rotate --config FILE [--app ID] [--stage]`: rotate an app's
//!   access-token key in the configuration file (see docs/tokens.md).
//!
//! Once the server accepts connections it prints exactly one line
//! `listening on http://IP:PORT` to stdout (`dev` adds the app id, the admin token and
//! the custom-token signing key); logs go to stderr.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latchkey_server::admin::{Admin, AdminOp};
use latchkey_server::config::TokenAlgorithm;
use latchkey_server::{ApiError, Config, Server};
use tracing_subscriber::EnvFilter;

/// The binary's allocator: mimalloc, which serves a request's many small, short-lived
/// allocations from per-thread pages (the system allocator took ~10% of an
/// authenticated request; docs/benchmarks.md). The library sets none: a program that
/// embeds the server chooses its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey-server",
    version,
    about = "App Services-compatible auth server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the apps of a TOML configuration file.
    Serve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Bring the configured database's schema up to date, then exit.
    Migrate {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Serve a development app on 127.0.0.1 with an in-memory database.
    Dev {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Write a commented configuration with fresh random secrets.
    Init {
        /// Write to this file (refuses to overwrite); default: stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Administer the configured database directly; prints JSON.
    Admin {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The app (default: the first configured app).
        #[arg(long)]
        app: Option<String>,
        #[command(subcommand)]
        op: AdminCommand,
    },
    /// Make and rotate access-token signing keys.
    Keys {
        #[command(subcommand)]
        op: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a private key and print its `[[apps.signing_keys]]` entry.
    Generate {
        /// ES256 (default), EdDSA, RS256 or HS256.
        #[arg(long, default_value = "ES256")]
        algorithm: TokenAlgorithm,
        /// Write the key to this new file (mode 0600) and name it in the entry;
        /// default: the key goes inline into the printed entry.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// The key id (default: today's date and 4 random hex digits).
        #[arg(long)]
        kid: Option<String>,
    },
    /// Rotate an app's signing key in a configuration file: the active key keeps
    /// verifying until its tokens have expired, a new one signs.
    Rotate {
        /// The configuration file (rewritten in place, comments kept).
        #[arg(long, short)]
        config: PathBuf,
        /// The app (default: the first configured app).
        #[arg(long)]
        app: Option<String>,
        /// The algorithm of a new key: ES256 (default), EdDSA, RS256 or HS256.
        #[arg(long, default_value = "ES256")]
        algorithm: TokenAlgorithm,
        /// Only add a new key, published but not signing yet (first step with several
        /// nodes).
        #[arg(long)]
        stage: bool,
        /// Write a new key to a file in this directory instead of inline.
        #[arg(long)]
        key_dir: Option<PathBuf>,
    },
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn keys(op: KeysCommand) -> Result<(), Box<dyn std::error::Error>> {
    match op {
        KeysCommand::Generate {
            algorithm,
            out,
            kid,
        } => {
            let kid = kid.unwrap_or_else(|| latchkey_server::tokens::new_kid(now_secs()));
            let key = latchkey_server::tokens::generate_key(algorithm)?;
            let mut entry = format!(
                "[[apps.signing_keys]]\nkid = \"{kid}\"\nalgorithm = \"{algorithm}\"\nactive = true\n"
            );
            match out {
                Some(path) => {
                    latchkey_server::keys::write_private(&path, key.expose())?;
                    entry.push_str(&format!(
                        "private_key_file = {}\n",
                        toml_edit::value(path.display().to_string())
                    ));
                    eprintln!("wrote {}", path.display());
                }
                None => entry.push_str(&format!(
                    "private_key = \"\"\"\n{}\n\"\"\"\n",
                    key.expose().trim_end()
                )),
            }
            std::io::stdout().lock().write_all(entry.as_bytes())?;
            Ok(())
        }
        KeysCommand::Rotate {
            config,
            app,
            algorithm,
            stage,
            key_dir,
        } => {
            let rotation = latchkey_server::keys::rotate_file(
                &config,
                &latchkey_server::keys::RotateOptions {
                    app,
                    algorithm,
                    stage,
                    key_dir,
                    now: now_secs(),
                },
            )?;
            for change in rotation.changes {
                eprintln!("{change}");
            }
            eprintln!(
                "rewrote {}; reload every node to apply it (SIGHUP or \
                 POST /admin/v1/keys/reload; docs/tokens.md)",
                config.display()
            );
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// List every user.
    ListUsers,
    /// Show one user.
    GetUser {
        /// User id.
        id: String,
    },
    /// Delete a user with its identities, sessions and credentials.
    DeleteUser {
        /// User id.
        id: String,
    },
    /// Disable a user and revoke its sessions.
    DisableUser {
        /// User id.
        id: String,
    },
    /// Enable a user.
    EnableUser {
        /// User id.
        id: String,
    },
    /// Revoke every session of a user.
    RevokeSessions {
        /// User id.
        id: String,
    },
    /// Replace a user's custom data with a JSON object.
    SetCustomData {
        /// User id.
        id: String,
        /// A JSON object, e.g. '{"plan":"pro"}'.
        json: String,
    },
    /// Create a server API key (the key is printed once).
    CreateServerKey {
        /// Key name.
        name: String,
    },
    /// List the server API keys (no secrets).
    ListServerKeys,
    /// Delete a server API key with its server user and sessions.
    DeleteServerKey {
        /// Key id.
        id: String,
    },
    /// Disable a server API key and revoke the sessions it created.
    DisableServerKey {
        /// Key id.
        id: String,
    },
    /// Enable a server API key.
    EnableServerKey {
        /// Key id.
        id: String,
    },
    /// Print the outbox (confirmation / reset messages), oldest first.
    Outbox,
}

impl AdminCommand {
    fn into_op(self) -> Result<AdminOp, Box<dyn std::error::Error>> {
        Ok(match self {
            AdminCommand::ListUsers => AdminOp::ListUsers,
            AdminCommand::GetUser { id } => AdminOp::GetUser(id),
            AdminCommand::DeleteUser { id } => AdminOp::DeleteUser(id),
            AdminCommand::DisableUser { id } => AdminOp::DisableUser(id),
            AdminCommand::EnableUser { id } => AdminOp::EnableUser(id),
            AdminCommand::RevokeSessions { id } => AdminOp::RevokeSessions(id),
            AdminCommand::SetCustomData { id, json } => {
                let value: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| format!("custom data is not valid JSON: {e}"))?;
                AdminOp::SetCustomData(id, value)
            }
            AdminCommand::CreateServerKey { name } => AdminOp::CreateServerKey(name),
            AdminCommand::ListServerKeys => AdminOp::ListServerKeys,
            AdminCommand::DeleteServerKey { id } => AdminOp::DeleteServerKey(id),
            AdminCommand::DisableServerKey { id } => AdminOp::DisableServerKey(id),
            AdminCommand::EnableServerKey { id } => AdminOp::EnableServerKey(id),
            AdminCommand::Outbox => AdminOp::Outbox,
        })
    }
}

/// 32 random bytes as 64 hex digits.
fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A commented configuration with fresh secrets; it loads as is.
fn init_config() -> String {
    format!(
        r#"# latchkey-server configuration, generated by `latchkey-server init`.
# Run with: latchkey-server serve --config latchkey.toml
# Every key is described in docs/server.md. Keep this file secret (chmod 600):
# it holds the token signing secret and key, the admin token and the custom-token key.

# Address to listen on (port 0 picks a free port). Behind a reverse proxy keep it
# on loopback and set public_url.
listen = "127.0.0.1:8080"

# "sqlite://PATH" (created when missing) or "sqlite::memory:". One server process
# per database file.
database = "sqlite://latchkey.db"

# Externally visible base URL returned by the location route.
# public_url = "https://auth.example.org"

# Bearer token of the admin API (/admin/v1). Remove to disable the admin API.
admin_token = "{admin}"

# Keep confirmation / reset messages (with their tokens) in the outbox table,
# readable at GET /admin/v1/apps/{{app}}/outbox. Turn off in production if not needed.
outbox = true

# Take the client IP from X-Forwarded-For (only behind a trusted reverse proxy).
trust_forwarded_for = false

# Throttling (kept in the database: shared by every node; see docs/server.md). A client is an IPv4
# address or an IPv6 /64.
[throttle]
# Failed logins per email from one client, then a cool-down (doubling).
max_failures_per_identifier = 20
lockout_secs = 900
# Failed logins per email from all clients together, per window.
max_failures_per_identifier_all_ips = 100
identifier_window_secs = 900
# Failed logins per client, per window.
max_failures_per_ip = 300
ip_window_secs = 900
# Confirmation / reset messages per email, and requests to those routes per client.
max_messages_per_email = 5
max_messages_per_ip = 200
message_window_secs = 900

# Send confirmation / reset emails over SMTP too.
# [smtp]
# host = "smtp.example.org"
# port = 587
# username = "latchkey"
# password = "..."
# tls = "starttls"   # "none" | "starttls" | "tls"
# from = "no-reply@example.org"

[[apps]]
# The client app id the SDKs are configured with.
id = "myapp"
# HS256 secret signing this app's tokens (at least 32 bytes).
signing_secret = "{signing}"
access_token_ttl_secs = 1800      # 30 minutes
refresh_token_ttl_secs = 5184000  # 60 days

# The key that signs access tokens (ES256). Your own services verify the tokens with
# its public key, published at /api/client/v2.0/app/myapp/.well-known/jwks.json
# (docs/tokens.md). Rotate it with `latchkey-server keys rotate --config FILE`.
# Without any signing key, the signing_secret signs access tokens too (HS256).
[[apps.signing_keys]]
kid = "{kid}"
algorithm = "ES256"
active = true
private_key = """
{es256}"""

# A provider is enabled when its table is present.
[apps.providers.anon-user]
enabled = true

[apps.providers.local-userpass]
enabled = true
# Confirm registrations at once (development only). When false, a confirmation
# message is sent (outbox / SMTP), or confirmation_webhook_url is called.
auto_confirm = false
# confirmation_url = "https://myapp.example.org/confirm"
# reset_url = "https://myapp.example.org/reset"
# confirmation_webhook_url = "https://hooks.example.org/confirm"
# reset_webhook_url = "https://hooks.example.org/reset"
# webhook_secret = "{webhook}"
# email_from = "no-reply@example.org"

# User API keys (client routes) and server API keys (admin API / CLI).
[apps.providers.api-key]
enabled = true

# Log in with JWTs your own backend signs (HS256) with this key.
[apps.providers.custom-token]
enabled = true
signing_keys = ["{custom}"]
"#,
        admin = random_hex(),
        signing = random_hex(),
        webhook = random_hex(),
        custom = random_hex(),
        kid = latchkey_server::tokens::new_kid(now_secs()),
        es256 = latchkey_server::tokens::generate_key(TokenAlgorithm::ES256)
            .map(|k| k.expose().to_owned())
            .unwrap_or_default(),
    )
}

fn init(out: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let text = init_config();
    match out {
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

async fn admin(
    config: PathBuf,
    app: Option<String>,
    op: AdminCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    let op = op.into_op()?;
    let admin = Admin::open(Config::load(&config)?).await?;
    let result = admin.run(app.as_deref(), op).await;
    admin.close().await;
    // Printed as the admin API would answer: "message (error_code)".
    let value = result.map_err(ApiError::from)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    Ok(())
}

async fn migrate(config: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let store = latchkey_server::open_store(&Config::load(&config)?).await?;
    store.close().await;
    eprintln!("the database schema is up to date");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let (config, dev) = match cli.command {
        Command::Serve { config } => (Config::load(&config)?, false),
        Command::Dev { port } => {
            let mut config = Config::dev();
            config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            (config, true)
        }
        Command::Init { out } => return init(out),
        Command::Migrate { config } => return migrate(config).await,
        Command::Admin { config, app, op } => return admin(config, app, op).await,
        Command::Keys { op } => return keys(op),
    };
    let app_id = config
        .apps
        .first()
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let admin_token = config.admin_token.clone();
    let custom_key = config
        .apps
        .first()
        .and_then(|a| a.providers.custom_token.signing_keys.first().cloned());
    let server = Server::start(config).await?;
    // Listening for SIGHUP before the listening line is printed: a supervisor that
    // sends it once the server is up never kills the process by the default action.
    #[cfg(unix)]
    let reload_on_hangup = reload_keys_on_sighup(server.key_reloader());
    {
        let addr = server.local_addr();
        let mut text = format!("listening on http://{addr}\n");
        if dev {
            // A throwaway development server: its secrets are printed on purpose.
            text.push_str(&format!("app id: {app_id}\n"));
            if let Some(token) = admin_token {
                text.push_str(&format!("admin token: {}\n", token.expose()));
            }
            if let Some(key) = custom_key {
                text.push_str(&format!(
                    "custom-token signing key (HS256): {}\n",
                    key.expose()
                ));
            }
            text.push_str("CORS: browser pages of any origin may call this app (dev only)\n");
            text.push_str(&format!(
                "admin API: curl -H 'Authorization: Bearer <admin token>' \
                 http://{addr}/admin/v1/apps/{app_id}/users\n"
            ));
            text.push_str(&format!(
                "console: http://{addr}/console (sign in with the admin token)\n\
                 metrics: http://{addr}/metrics\n"
            ));
        }
        // One write, so that a reader that stops after the first lines cannot make a
        // later line fail.
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    shutdown_signal().await;
    #[cfg(unix)]
    reload_on_hangup.abort();
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Lines waiting for stderr at most; beyond them, new lines are dropped (counted by
/// tracing-appender) rather than making a request wait for a slow reader.
const LOG_BUFFER_LINES: usize = 64 * 1024;

/// Logging to stderr through a non-blocking, lossy writer (a thread writes the lines;
/// a request never waits for stderr), as text or, with `LATCHKEY_LOG_FORMAT=json`, one
/// JSON object per line. The filter is `RUST_LOG` (default `info`: the server's own
/// lines and a summary of requests a minute; `latchkey_server::http::access=debug`
/// adds a line per request). Keep the guard until exit: dropping it flushes.
fn init_logging() -> Result<tracing_appender::non_blocking::WorkerGuard, String> {
    let json = match std::env::var("LATCHKEY_LOG_FORMAT").as_deref() {
        Err(_) | Ok("" | "text") => false,
        Ok("json") => true,
        Ok(other) => {
            return Err(format!(
                "LATCHKEY_LOG_FORMAT must be `text` or `json`, not `{other}`"
            ));
        }
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("latchkey-log")
        .finish(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    Ok(guard)
}

/// From now on, SIGHUP re-reads the signing keys from the configuration file
/// (docs/tokens.md).
#[cfg(unix)]
fn reload_keys_on_sighup(reloader: latchkey_server::KeyReloader) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let hangup = signal(SignalKind::hangup());
    tokio::spawn(async move {
        let mut hangup = match hangup {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload keys with the admin API");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading signing keys");
            // The reload logs its result (each app's active kid, or why nothing changed).
            let _ = reloader.reload().await;
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard = match init_logging() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("latchkey-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latchkey-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-server: {e}");
            ExitCode::FAILURE
        }
    }
}
