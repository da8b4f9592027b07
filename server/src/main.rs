//! `confab-server`: reads its configuration, serves until SIGINT or SIGTERM, then shuts down
//! gracefully (open WebSockets are closed with 1001).

use clap::Parser;
use confab_server::{config::Config, Server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    confab_server::telemetry::init(&config.log, config.log_format);
    // Every connection is a file descriptor; the soft limit is often 1,024, far below what
    // the hard limit allows and a busy node needs.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "file descriptor limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the file descriptor limit"),
    }
    let server = Server::start(config).await?;
    tracing::info!(addr = %server.addr(), "confab is listening");
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
