//! `tracing` set-up from `[log]`.

use tracing_subscriber::EnvFilter;

use super::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `[log] level`.
pub fn init(cfg: &LogConfig) {
    // The DTLS layer warns about an empty remote address on every
    // connection; it is harmless noise, so it is held to errors.
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = EnvFilter::try_new(format!("{base},rtc_dtls=error"))
        .unwrap_or_else(|_| EnvFilter::new("info,rtc_dtls=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
