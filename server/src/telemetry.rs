//! Logging.

use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber with `filter` (e.g. `info,confab_server=debug`).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|err| {
        eprintln!("invalid log filter {filter:?} ({err}); using \"info\"");
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
