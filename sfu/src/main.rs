//! `sfu`: the media server.
//!
//! `sfu` runs the server; `sfu --print-config` prints the effective
//! configuration; `sfu token create` prints an access token.

mod app;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use signaling::auth::{Auth, Claims, Grants};

use app::config::Config;

#[derive(Parser)]
#[command(
    name = "sfu",
    version,
    about = "WebRTC media server: SFU and P2P rooms in the browser"
)]
struct Cli {
    /// TOML configuration file (see docs/config.md).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a token signed with a configured API key.
    Create {
        #[arg(long)]
        room: String,
        #[arg(long)]
        identity: String,
        /// Display name shown to others.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. `30m`, `1h`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// API key to sign with (default: the first configured).
        #[arg(long)]
        key: Option<String>,
        /// Subscribe only: no publish grant.
        #[arg(long)]
        no_publish: bool,
        /// Publish only: no subscribe grant.
        #[arg(long)]
        no_subscribe: bool,
        /// Room mode to create the room in: `sfu` or `p2p`.
        #[arg(long)]
        mode: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sfu: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", cfg.to_toml());
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Some(Command::Token { command }) => create_token(&cfg, command),
        None => serve(cfg),
    }
}

fn serve(cfg: Config) -> ExitCode {
    app::logging::init(&cfg.log);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sfu: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(app::server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sfu: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn create_token(cfg: &Config, cmd: TokenCommand) -> ExitCode {
    let TokenCommand::Create {
        room,
        identity,
        name,
        ttl,
        key,
        no_publish,
        no_subscribe,
        mode,
    } = cmd;
    if cfg.auth.keys.is_empty() {
        eprintln!("sfu: no API key is configured; add one under [auth] keys (or SFU_AUTH__KEYS__<name>=<secret>)");
        return ExitCode::from(2);
    }
    let mode = match mode.as_deref() {
        None => None,
        Some("sfu") => Some(signaling::protocol::RoomMode::Sfu),
        Some("p2p") => Some(signaling::protocol::RoomMode::P2p),
        Some(other) => {
            eprintln!("sfu: unknown mode `{other}`: use `sfu` or `p2p`");
            return ExitCode::from(2);
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: identity,
        room: Some(room),
        name,
        grants: Grants {
            join: true,
            publish: !no_publish,
            subscribe: !no_subscribe,
            admin: false,
        },
        mode,
        exp: now + ttl.as_secs(),
        iat: now,
    };
    match Auth::new(cfg.auth.keys.clone()).sign(&claims, key.as_deref()) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sfu: {e}");
            ExitCode::from(2)
        }
    }
}
