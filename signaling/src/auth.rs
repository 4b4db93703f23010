//! Access tokens (JWT, HS256) and TURN credentials.
//!
//! A token names the API key that signed it in its `kid` header and carries
//! the room, the identity, a display name, grants and an expiry. With no API
//! keys configured the server runs in development mode: it signs tokens with
//! a secret made at start-up, and a join without a token is allowed.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::protocol::{IceServer, RoomMode};

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    pub join: bool,
    pub publish: bool,
    pub subscribe: bool,
    pub admin: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            join: true,
            publish: true,
            subscribe: true,
            admin: false,
        }
    }
}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Identity of the participant.
    pub sub: String,
    /// The room the token is for. `None` (admin tokens) means any room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub grants: Grants,
    /// Room mode to use when the token's join creates the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RoomMode>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default)]
    pub iat: u64,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token is required to join")]
    Required,
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is for another room")]
    WrongRoom,
    #[error("the token does not grant joining")]
    NoJoinGrant,
    #[error("no API key is configured to sign tokens with")]
    NoKey,
    #[error("unknown API key `{0}`")]
    UnknownKey(String),
}

impl TokenError {
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Required => ErrorCode::TokenRequired,
            TokenError::Invalid | TokenError::UnknownKey(_) | TokenError::NoKey => {
                ErrorCode::TokenInvalid
            }
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::WrongRoom => ErrorCode::TokenWrongRoom,
            TokenError::NoJoinGrant => ErrorCode::PermissionDenied,
        }
    }
}

/// The name under which development mode signs its tokens.
pub const DEV_KEY: &str = "dev";

/// Signs and verifies tokens with the configured API keys.
#[derive(Clone)]
pub struct Auth {
    keys: BTreeMap<String, String>,
    development: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("Auth")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("development", &self.development)
            .finish()
    }
}

impl Auth {
    /// Keys maps API key names to their secrets. An empty map means
    /// development mode, with a random secret for this process.
    pub fn new(keys: BTreeMap<String, String>) -> Self {
        if keys.is_empty() {
            let secret: [u8; 32] = rand::rng().random();
            let secret = base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret);
            Auth {
                keys: BTreeMap::from([(DEV_KEY.to_owned(), secret)]),
                development: true,
            }
        } else {
            Auth {
                keys,
                development: false,
            }
        }
    }

    /// True when no keys are configured: tokens are optional and minted on request.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// Signs claims with the named key, or the first key when `key` is `None`.
    pub fn sign(&self, claims: &Claims, key: Option<&str>) -> Result<String, TokenError> {
        let (name, secret) = match key {
            Some(k) => {
                let s = self
                    .keys
                    .get(k)
                    .ok_or_else(|| TokenError::UnknownKey(k.to_owned()))?;
                (k, s)
            }
            None => self
                .keys
                .iter()
                .next()
                .map(|(k, s)| (k.as_str(), s))
                .ok_or(TokenError::NoKey)?,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(name.to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .map_err(|_| TokenError::Invalid)
    }

    /// Verifies a token's signature and expiry at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let secret = match header.kid.as_deref() {
            Some(kid) => self.keys.get(kid).ok_or(TokenError::Invalid)?,
            None if self.keys.len() == 1 => self.keys.values().next().ok_or(TokenError::Invalid)?,
            None => return Err(TokenError::Invalid),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the caller's clock, so tests can set it.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        if data.claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }

    /// Verifies a token for joining `room`.
    pub fn verify_join(&self, token: &str, room: &str, now: u64) -> Result<Claims, TokenError> {
        let claims = self.verify(token, now)?;
        if let Some(r) = &claims.room {
            if r != room {
                return Err(TokenError::WrongRoom);
            }
        } else if !claims.grants.admin {
            return Err(TokenError::WrongRoom);
        }
        if !claims.grants.join {
            return Err(TokenError::NoJoinGrant);
        }
        Ok(claims)
    }
}

/// Time-limited TURN credentials as coturn's `use-auth-secret` expects:
/// username `expiry:identity`, credential base64(HMAC-SHA1(secret, username)).
pub fn turn_credentials(secret: &str, identity: &str, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{identity}");
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The ICE servers for one participant: the static ones, plus TURN with
/// fresh credentials when a shared secret is configured.
pub fn ice_servers_for(ice: &crate::config::IceConfig, identity: &str, now: u64) -> Vec<IceServer> {
    let mut out = ice.servers.clone();
    if let Some(turn) = &ice.turn {
        let (username, credential) =
            turn_credentials(&turn.secret, identity, now + turn.ttl.as_secs());
        out.push(IceServer {
            urls: turn.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(room: &str, exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            room: Some(room.into()),
            name: Some("Alice".into()),
            grants: Grants::default(),
            mode: None,
            exp,
            iat: 0,
        }
    }

    fn auth() -> Auth {
        Auth::new(BTreeMap::from([(
            "key1".to_string(),
            "secret-one".to_string(),
        )]))
    }

    #[test]
    fn valid_token_verifies() {
        let a = auth();
        let t = a.sign(&claims("r1", 2000), None).unwrap();
        let c = a.verify_join(&t, "r1", 1000).unwrap();
        assert_eq!(c.sub, "alice");
        assert!(!a.is_development());
    }

    #[test]
    fn expired_token_is_refused() {
        let a = auth();
        let t = a.sign(&claims("r1", 999), None).unwrap();
        assert_eq!(a.verify_join(&t, "r1", 1000), Err(TokenError::Expired));
        assert_eq!(TokenError::Expired.code(), ErrorCode::TokenExpired);
    }

    #[test]
    fn forged_token_is_refused() {
        let other = Auth::new(BTreeMap::from([(
            "key1".to_string(),
            "another".to_string(),
        )]));
        let t = other.sign(&claims("r1", 2000), None).unwrap();
        assert_eq!(auth().verify_join(&t, "r1", 1000), Err(TokenError::Invalid));
        assert_eq!(
            auth().verify_join("not.a.token", "r1", 1000),
            Err(TokenError::Invalid)
        );
        // Tampered payload, original signature.
        let good = auth().sign(&claims("r1", 2000), None).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims("r2", 2000)).unwrap());
        parts[1] = &evil;
        assert_eq!(
            auth().verify_join(&parts.join("."), "r2", 1000),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn wrong_room_and_missing_grant_are_refused() {
        let a = auth();
        let t = a.sign(&claims("r1", 2000), None).unwrap();
        assert_eq!(a.verify_join(&t, "r2", 1000), Err(TokenError::WrongRoom));
        let mut c = claims("r1", 2000);
        c.grants.join = false;
        let t = a.sign(&c, None).unwrap();
        assert_eq!(a.verify_join(&t, "r1", 1000), Err(TokenError::NoJoinGrant));
    }

    #[test]
    fn turn_credentials_match_coturn_scheme() {
        // Reference value: printf '1700000000:alice' | openssl dgst -sha1 -hmac s3cret -binary | base64
        let (u, c) = turn_credentials("s3cret", "alice", 1_700_000_000);
        assert_eq!(u, "1700000000:alice");
        assert_eq!(c, "TtElzSjT0GdnTQ9xdcRNxx96yQs=");
        assert_eq!(c.len(), 28);
    }
}
