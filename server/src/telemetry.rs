//! Logging: text with colours on a terminal, JSON lines otherwise (or as configured), never
//! colour codes in a file.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global `tracing` subscriber with `filter` (e.g. `info,confab_server=debug`).
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|err| {
        eprintln!("invalid log filter {filter:?} ({err}); using \"info\"");
        EnvFilter::new("info")
    });
    let terminal = std::io::stdout().is_terminal();
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Auto if !terminal => logs.json().init(),
        LogFormat::Auto | LogFormat::Text => logs.with_ansi(terminal).init(),
    }
}
