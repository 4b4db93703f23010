//! The keys a connection encrypts its own SRTP with, learnt through the
//! library's crypto provider.
//!
//! The library keeps its SRTP contexts private, and every packet it
//! encrypts walks its whole per-connection pipeline (interceptor chain,
//! queues, a copy per handler). Forwarded RTP skips that pipeline (see
//! `core::srtp_out`), so the shard needs the connection's outbound SRTP
//! keys. The provider is the library's supported extension point for
//! cryptography: each connection gets a [`KeyTap`] that hands every call
//! to the library's default provider and notes the two calls SRTP keying
//! makes, the key derivation's AES blocks (master key and salt) and the
//! ciphers built from their output.
//!
//! When DTLS completes, the library derives the local context first, then
//! the remote one (rtc 0.21.1, `DtlsHandler::update_srtp_contexts`). The
//! first master key seen is therefore ours and the second the remote's
//! (which decrypts what a publisher sends, `core::srtp_in`);
//! [`KeyTap::outbound`] and [`KeyTap::inbound`] check that by deriving the
//! session key themselves and finding the library's cipher built from that
//! very key, and give nothing when they cannot (a profile other than
//! AES-128-GCM and AES-CM-128 with HMAC-SHA1-80, or a library that keys
//! differently): such a connection's media stays on the library's path.

use std::sync::{Arc, Mutex};

use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher, CryptoAlgorithm,
    CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac, PublicKey, RTCCrypto,
    RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher, StreamCipherAlgorithm,
};

use crate::core::srtp_out::SrtpCipher;

/// Which of a master key's two sessions a cipher is for: RTP or RTCP
/// (each has its own session keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    Rtp,
    Rtcp,
}

impl Session {
    /// The key derivation labels of the session's encryption key,
    /// authentication key and salt (RFC 3711, 4.3.2).
    fn labels(self) -> (u8, u8, u8) {
        match self {
            Session::Rtp => (0x00, 0x01, 0x02),
            Session::Rtcp => (0x03, 0x04, 0x05),
        }
    }
}
/// AES-128 master keys; master salts are 12 bytes with GCM (RFC 7714),
/// 14 with AES-CM (RFC 3711).
const KEY_LEN: usize = 16;
const GCM_SALT_LEN: usize = 12;
const CM_SALT_LEN: usize = 14;
/// HMAC-SHA1 session authentication key.
const AUTH_KEY_LEN: usize = 20;
/// Keying happens at the handshake only; a connection never needs more.
const MAX_NOTES: usize = 64;

/// One call the tap noted, in order.
enum Note {
    /// A key derivation block: AES-128 under `key` of `input`.
    Derive { key: [u8; 16], input: [u8; 16] },
    /// An AES-128-GCM cipher built with `key`.
    Gcm { key: [u8; 16] },
    /// An AES-128 counter-mode cipher built with `key`.
    Ctr { key: [u8; 16] },
}

/// A crypto provider for one connection: the library's default, with the
/// SRTP keying calls noted.
pub struct KeyTap {
    crypto: Tap,
}

impl std::fmt::Debug for KeyTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyTap")
    }
}

struct Tap {
    inner: Arc<dyn RTCCryptoProvider>,
    notes: Mutex<Vec<Note>>,
}

impl KeyTap {
    /// A tap over the library's default provider.
    pub fn new() -> Result<Arc<KeyTap>, CryptoError> {
        let inner = rtc::crypto::default_provider()?;
        Ok(Arc::new(KeyTap {
            crypto: Tap {
                inner,
                notes: Mutex::new(Vec::new()),
            },
        }))
    }

    /// The connection's outbound RTP cipher, once DTLS has keyed SRTP
    /// with AES-128-GCM or AES-CM-128 with HMAC-SHA1-80; `None` before, and
    /// for any other profile.
    pub fn outbound(&self) -> Option<SrtpCipher> {
        self.session(0, Session::Rtp)
    }

    /// The connection's inbound RTP cipher (the remote's keys), under the
    /// same conditions as [`KeyTap::outbound`].
    pub fn inbound(&self) -> Option<SrtpCipher> {
        self.session(1, Session::Rtp)
    }

    /// The connection's inbound RTCP cipher (the remote's keys, RTCP
    /// session), under the same conditions as [`KeyTap::outbound`].
    pub fn inbound_rtcp(&self) -> Option<SrtpCipher> {
        self.session(1, Session::Rtcp)
    }

    /// The `session` cipher of the `nth` master key the library keyed (0:
    /// the local one, 1: the remote one). The profile is recognised by the
    /// RTP session's key, the one the library builds a cipher from first.
    fn session(&self, nth: usize, session: Session) -> Option<SrtpCipher> {
        let notes = self.crypto.notes.lock().ok()?;
        // The first derivation under each master key is its encryption
        // key's: the input is the master salt itself (label 0, counter 0),
        // in 12 bytes (GCM) or 14 (AES-CM).
        let mut masters: Vec<([u8; 16], [u8; 16])> = Vec::new();
        for n in notes.iter() {
            if let Note::Derive { key, input } = n {
                if !masters.iter().any(|(k, _)| k == key) {
                    masters.push((*key, *input));
                }
            }
        }
        let (master, input) = *masters.get(nth)?;
        let crypto = self.crypto.inner.crypto();
        let session_key = derive(
            crypto,
            &master,
            &input[..CM_SALT_LEN],
            Session::Rtp.labels().0,
            16,
        )
        .ok()?;
        let gcm = notes
            .iter()
            .skip_while(|n| !matches!(n, Note::Derive { key, .. } if *key == master))
            .find_map(|n| match n {
                Note::Gcm { key } if key[..] == session_key[..] => Some(true),
                Note::Ctr { key } if key[..] == session_key[..] => Some(false),
                _ => None,
            })?;
        if gcm {
            gcm_session(crypto, &master, &input[..GCM_SALT_LEN], session).ok()
        } else {
            cm_session(crypto, &master, &input[..CM_SALT_LEN], session).ok()
        }
    }
}

/// The `session` cipher of an AES-128-GCM SRTP master key and salt.
pub fn gcm_session(
    crypto: &dyn RTCCrypto,
    master: &[u8; KEY_LEN],
    master_salt: &[u8],
    session: Session,
) -> Result<SrtpCipher, CryptoError> {
    let (enc, _, salt_label) = session.labels();
    let key = derive(crypto, master, master_salt, enc, 16)?;
    let salt = derive(crypto, master, master_salt, salt_label, GCM_SALT_LEN)?;
    let mut session_salt = [0u8; GCM_SALT_LEN];
    session_salt.copy_from_slice(&salt);
    Ok(SrtpCipher::Gcm {
        cipher: crypto.new_aead(AeadAlgorithm::Aes128Gcm, &key)?,
        salt: session_salt,
    })
}

/// The `session` cipher of an AES-CM-128 with HMAC-SHA1-80 SRTP master
/// key and salt.
pub fn cm_session(
    crypto: &dyn RTCCrypto,
    master: &[u8; KEY_LEN],
    master_salt: &[u8],
    session: Session,
) -> Result<SrtpCipher, CryptoError> {
    let (enc, auth_label, salt_label) = session.labels();
    let key = derive(crypto, master, master_salt, enc, 16)?;
    let auth = derive(crypto, master, master_salt, auth_label, AUTH_KEY_LEN)?;
    let salt = derive(crypto, master, master_salt, salt_label, CM_SALT_LEN)?;
    let mut session_salt = [0u8; CM_SALT_LEN];
    session_salt.copy_from_slice(&salt);
    Ok(SrtpCipher::CmSha1_80 {
        cipher: crypto.new_stream_cipher(StreamCipherAlgorithm::Aes128Ctr, &key)?,
        auth: crypto.new_hmac(HmacAlgorithm::Sha1, &auth)?,
        salt: session_salt,
    })
}

/// The AES-CM key derivation of RFC 3711 (4.3.1, 4.3.3), key derivation
/// rate 0: `len` bytes for `label`.
fn derive(
    crypto: &dyn RTCCrypto,
    master: &[u8; KEY_LEN],
    master_salt: &[u8],
    label: u8,
    len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(len.next_multiple_of(16));
    for counter in 0..len.div_ceil(16) as u16 {
        let mut block = [0u8; 16];
        block[..master_salt.len()].copy_from_slice(master_salt);
        block[7] ^= label;
        block[14..].copy_from_slice(&counter.to_be_bytes());
        crypto.block_encrypt(BlockCipherAlgorithm::Aes128, master, &mut block)?;
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    Ok(out)
}

impl Tap {
    fn note(&self, n: Note) {
        if let Ok(mut notes) = self.notes.lock() {
            if notes.len() < MAX_NOTES {
                notes.push(n);
            }
        }
    }
}

impl RTCCryptoProvider for KeyTap {
    fn name(&self) -> &'static str {
        self.crypto.inner.name()
    }
    fn crypto(&self) -> &dyn RTCCrypto {
        &self.crypto
    }
    fn random(&self) -> &dyn RTCRandom {
        self.crypto.inner.random()
    }
}

impl RTCCrypto for Tap {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }
    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }
    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        if let (BlockCipherAlgorithm::Aes128, Ok(key), Ok(input)) = (
            algorithm,
            <[u8; 16]>::try_from(key),
            <[u8; 16]>::try_from(&*block),
        ) {
            self.note(Note::Derive { key, input });
        }
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }
    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }
    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        if let (StreamCipherAlgorithm::Aes128Ctr, Ok(key)) = (algorithm, <[u8; 16]>::try_from(key))
        {
            self.note(Note::Ctr { key });
        }
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }
    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        if let (AeadAlgorithm::Aes128Gcm, Ok(key)) = (algorithm, <[u8; 16]>::try_from(key)) {
            self.note(Note::Gcm { key });
        }
        self.inner.crypto().new_aead(algorithm, key)
    }
    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }
    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn rtc::crypto::ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }
    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }
    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }
    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}
