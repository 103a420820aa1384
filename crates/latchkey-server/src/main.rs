//! The `latchkey-server` command.
//!
//! - `latchkey-server serve --config FILE`: serve the configured apps.
//! - `latchkey-server dev`: a throwaway loopback server with one app and every provider on.
//!
//! Once the server accepts connections it prints exactly one line
//! `listening on http://IP:PORT` to stdout (`dev` adds `app id: ...`); logs go to stderr.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latchkey_server::{Config, Server};
use tracing_subscriber::EnvFilter;

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
    /// Serve a development app on 127.0.0.1 with an in-memory database.
    Dev {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
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
    };
    let app_id = config
        .apps
        .first()
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let server = Server::start(config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", server.local_addr())?;
        if dev {
            writeln!(out, "app id: {app_id}")?;
        }
        out.flush()?;
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
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
