//! The server's whole configuration: built-in defaults, an optional TOML
//! file, then `SFU_` environment variables (`SFU_SECTION__KEY`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use signaling::config::{
    AuthConfig, ClusterConfig, IceConfig, LimitsConfig, RoomsConfig, SignalingConfig,
};

use sfu::MediaConfig;

/// `[server]`: HTTP, WebSocket and TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address for HTTP(S) and the WebSocket.
    pub listen: SocketAddr,
    /// PEM certificate chain. With `tls_key`, the server speaks HTTPS and WSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// When set, `/api/stats` and `/metrics` are served only on this
    /// address (plain HTTP), e.g. `127.0.0.1:9090`, and not on `listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7880)),
            tls_cert: None,
            tls_key: None,
            stats_listen: None,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A level (`info`) or a filter (`info,sfu=debug`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Human,
        }
    }
}

/// `[web]`: the demo page and the embeddable room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Origins allowed to frame the room (`https://example.com`). Empty: any
    /// origin in development mode, none but this server otherwise.
    pub frame_ancestors: Vec<String>,
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub rooms: RoomsConfig,
    pub ice: IceConfig,
    pub limits: LimitsConfig,
    pub media: MediaConfig,
    pub web: WebConfig,
    pub cluster: ClusterConfig,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Inconsistent(String),
}

impl Config {
    /// Loads defaults, then `file` if given, then the environment variables in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut b = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Missing(path.to_owned()));
            }
            b = b.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SFU_"))
            .collect();
        b = b.add_source(
            config::Environment::with_prefix("SFU")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("media.advertise")
                .with_list_parse_key("web.frame_ancestors")
                .with_list_parse_key("auth.allowed_origins")
                .with_list_parse_key("ice.turn.urls")
                .with_list_parse_key("media.codecs")
                .source(Some(env)),
        );
        let cfg: Config = b.build()?.try_deserialize()?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError::Inconsistent(
                "server.tls_cert and server.tls_key go together: set both or neither".into(),
            ));
        }
        self.auth.check().map_err(ConfigError::Inconsistent)?;
        if self.cluster.enabled() && self.cluster.node_ttl <= self.cluster.heartbeat {
            return Err(ConfigError::Inconsistent(
                "cluster.node_ttl must be longer than cluster.heartbeat (three heartbeats or more)"
                    .into(),
            ));
        }
        if self.rooms.max_p2p_participants < 2 {
            return Err(ConfigError::Inconsistent(
                "rooms.max_p2p_participants must be at least 2".into(),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// The sections signaling needs.
    pub fn signaling(&self) -> SignalingConfig {
        SignalingConfig {
            auth: self.auth.clone(),
            rooms: self.rooms.clone(),
            ice: self.ice.clone(),
            limits: self.limits.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn defaults_load_without_file_or_env() {
        let c = Config::load(None, no_env()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:7880");
        assert_eq!(c.log.level, "info");
        assert!(c.auth.keys.is_empty());
        assert_eq!(c.rooms.max_p2p_participants, 4);
        assert_eq!(c.limits.max_message_bytes, 65536);
        assert_eq!(c.media.udp_port, 7882);
    }

    #[test]
    fn environment_overrides_defaults_and_file() {
        let dir = std::env::temp_dir().join(format!("sfu-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[rooms]\nmax_p2p_participants = 6\n",
        )
        .unwrap();
        let env = vec![
            (
                "SFU_SERVER__LISTEN".to_string(),
                "127.0.0.1:9100".to_string(),
            ),
            ("SFU_LOG__FORMAT".to_string(), "json".to_string()),
            (
                "SFU_MEDIA__ADVERTISE".to_string(),
                "203.0.113.7,198.51.100.2".to_string(),
            ),
            (
                "SFU_AUTH__KEYS__main".to_string(),
                "s3cret-s3cret-s3cret-s3cret-s3cret".to_string(),
            ),
            ("OTHER".to_string(), "ignored".to_string()),
        ];
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(c.rooms.max_p2p_participants, 6);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.media.advertise.len(), 2);
        assert_eq!(
            c.auth.keys.get("main").map(String::as_str),
            Some("s3cret-s3cret-s3cret-s3cret-s3cret")
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("sfu-cfg-unk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.toml");
        std::fs::write(&file, "[server]\nlistn = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Some(&file), no_env()).unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
        std::fs::write(&file, "[nosuchsection]\na = 1\n").unwrap();
        let err = Config::load(Some(&file), no_env()).unwrap_err().to_string();
        assert!(err.contains("nosuchsection"), "{err}");
        let env = vec![("SFU_ROOMS__MAX_PEERS".to_string(), "3".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("max_peers"), "{err}");
    }

    #[test]
    fn missing_file_and_half_tls_are_errors() {
        assert!(matches!(
            Config::load(Some(Path::new("/nonexistent/x.toml")), no_env()),
            Err(ConfigError::Missing(_))
        ));
        let env = vec![("SFU_SERVER__TLS_CERT".to_string(), "/tmp/c.pem".to_string())];
        assert!(matches!(
            Config::load(None, env),
            Err(ConfigError::Inconsistent(_))
        ));
    }

    #[test]
    fn short_api_secrets_are_refused() {
        let env = vec![("SFU_AUTH__KEYS__main".to_string(), "too-short".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(
            err.contains("auth.keys.main") && err.contains("32"),
            "{err}"
        );
        let env = vec![(
            "SFU_AUTH__KEYS__main".to_string(),
            "x".repeat(signaling::config::MIN_SECRET_BYTES),
        )];
        assert!(Config::load(None, env).is_ok());
    }

    #[test]
    fn printed_config_loads_back() {
        let mut c = Config::default();
        c.rooms.max_p2p_participants = 3;
        let text = c.to_toml();
        let dir = std::env::temp_dir().join(format!("sfu-cfg-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, &text).unwrap();
        assert_eq!(Config::load(Some(&file), no_env()).unwrap(), c);
    }
}
