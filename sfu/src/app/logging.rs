//! `tracing` set-up from `[log]`.

use tracing_subscriber::EnvFilter;

use super::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `[log] level`.
pub fn init(cfg: &LogConfig) {
    // The media library's per-packet warnings are held to errors: the
    // server counts those packets and logs them at a bounded rate.
    let lib = sfu::LIBRARY_LOG_DIRECTIVES;
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = EnvFilter::try_new(format!("{base},{lib}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{lib}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
