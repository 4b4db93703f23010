//! The `sfu` command line: configuration printing and token creation.

use std::process::Command;

use signaling::auth::Auth;

fn sfu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sfu"));
    // Start from a clean slate whatever the caller's environment holds.
    for (k, _) in std::env::vars() {
        if k.starts_with("SFU_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn print_config_shows_defaults_and_overrides() {
    let out = sfu().arg("--print-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:7880\""), "{text}");
    assert!(text.contains("max_p2p_participants = 4"), "{text}");
    let out = sfu()
        .arg("--print-config")
        .env("SFU_ROOMS__MAX_P2P_PARTICIPANTS", "3")
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("max_p2p_participants = 3"));
}

#[test]
fn unknown_key_is_refused_with_its_name() {
    let out = sfu()
        .arg("--print-config")
        .env("SFU_SERVER__LISTN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("listn"), "{err}");
}

#[test]
fn token_create_signs_with_the_configured_key() {
    let out = sfu()
        .args([
            "token",
            "create",
            "--room",
            "standup",
            "--identity",
            "ann",
            "--name",
            "Ann",
            "--ttl",
            "2h",
        ])
        .env(
            "SFU_AUTH__KEYS__main",
            "very-secret-very-secret-very-secret",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let auth = Auth::new(
        [(
            "main".to_string(),
            "very-secret-very-secret-very-secret".to_string(),
        )]
        .into(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = auth.verify_join(&token, "standup", now).unwrap();
    assert_eq!(claims.sub, "ann");
    assert_eq!(claims.name.as_deref(), Some("Ann"));
    assert!(claims.exp > now + 7000 && claims.exp <= now + 7200);
    // Signed with that key: another secret does not verify it.
    let other = Auth::new([("main".to_string(), "other".to_string())].into());
    assert!(other.verify(&token, now).is_err());
}

#[test]
fn token_create_without_keys_explains_what_to_configure() {
    let out = sfu()
        .args(["token", "create", "--room", "r", "--identity", "i"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("[auth] keys"));
}
