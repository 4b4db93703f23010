//! The media clips the bots publish: VP8 in IVF and Opus in Ogg, read into
//! memory once and looped.
//!
//! A [`Player`] turns a clip into frames due at a given time. It is Sans-I/O:
//! the bot asks `poll(now)` and gets the frames to packetize, with the RTP
//! duration of each; the player never reads a clock.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Why a clip could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not an IVF file")]
    NotIvf(String),
    #[error("{0} is not an Ogg file")]
    NotOgg(String),
    #[error("{0} is truncated or corrupt")]
    Corrupt(String),
    #[error("{0} holds no frames")]
    Empty(String),
}

/// One encoded frame and how long it lasts, in RTP clock units.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub data: Bytes,
    pub duration_rtp: u32,
    pub keyframe: bool,
}

/// A whole clip in memory.
#[derive(Clone, Debug)]
pub struct Clip {
    pub frames: Vec<Frame>,
    /// Wall-clock length of one frame.
    pub frame_interval: Duration,
}

impl Clip {
    /// Reads a VP8 IVF file; `fps` frames per second, 90 kHz RTP clock.
    pub fn read_ivf(path: &Path) -> Result<Clip, ClipError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ClipError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse_ivf(&bytes, &name)
    }

    /// Parses IVF: a 32-byte file header, then frames of a 12-byte header
    /// (size, 64-bit timestamp) and the payload.
    pub fn parse_ivf(bytes: &[u8], name: &str) -> Result<Clip, ClipError> {
        if bytes.len() < 32 || &bytes[0..4] != b"DKIF" {
            return Err(ClipError::NotIvf(name.into()));
        }
        let header_len = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
        let rate = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let scale = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        if rate == 0 || scale == 0 || header_len < 32 || header_len > bytes.len() {
            return Err(ClipError::Corrupt(name.into()));
        }
        let mut pos = header_len;
        let mut frames = Vec::new();
        let frame_interval = Duration::from_secs_f64(scale as f64 / rate as f64);
        let duration_rtp = (90_000.0 * frame_interval.as_secs_f64()).round() as u32;
        while pos < bytes.len() {
            let Some(h) = bytes.get(pos..pos + 12) else {
                return Err(ClipError::Corrupt(name.into()));
            };
            let size = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let Some(data) = bytes.get(pos + 12..pos + 12 + size) else {
                return Err(ClipError::Corrupt(name.into()));
            };
            // VP8 payload header: bit 0 of the first byte is 0 for a keyframe.
            let keyframe = data.first().is_some_and(|b| b & 1 == 0);
            frames.push(Frame {
                data: Bytes::copy_from_slice(data),
                duration_rtp,
                keyframe,
            });
            pos += 12 + size;
        }
        if frames.is_empty() {
            return Err(ClipError::Empty(name.into()));
        }
        Ok(Clip {
            frames,
            frame_interval,
        })
    }

    /// Reads an Opus stream in Ogg; 20 ms packets, 48 kHz RTP clock.
    pub fn read_ogg_opus(path: &Path) -> Result<Clip, ClipError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ClipError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse_ogg_opus(&bytes, &name)
    }

    /// Parses Ogg pages into packets (segments joined by the lacing table)
    /// and drops the two Opus header packets (`OpusHead`, `OpusTags`).
    pub fn parse_ogg_opus(bytes: &[u8], name: &str) -> Result<Clip, ClipError> {
        if !bytes.starts_with(b"OggS") {
            return Err(ClipError::NotOgg(name.into()));
        }
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let Some(h) = bytes.get(pos..pos + 27) else {
                return Err(ClipError::Corrupt(name.into()));
            };
            if &h[0..4] != b"OggS" {
                return Err(ClipError::Corrupt(name.into()));
            }
            let nseg = h[26] as usize;
            let Some(lacing) = bytes.get(pos + 27..pos + 27 + nseg) else {
                return Err(ClipError::Corrupt(name.into()));
            };
            let mut data = pos + 27 + nseg;
            for &l in lacing {
                let Some(seg) = bytes.get(data..data + l as usize) else {
                    return Err(ClipError::Corrupt(name.into()));
                };
                partial.extend_from_slice(seg);
                data += l as usize;
                // A lacing value under 255 ends a packet.
                if l < 255 {
                    packets.push(std::mem::take(&mut partial));
                }
            }
            pos = data;
        }
        let frames: Vec<Frame> = packets
            .into_iter()
            .filter(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags"))
            .map(|p| Frame {
                duration_rtp: 960,
                keyframe: true,
                data: Bytes::from(p),
            })
            .collect();
        if frames.is_empty() {
            return Err(ClipError::Empty(name.into()));
        }
        Ok(Clip {
            frames,
            frame_interval: Duration::from_millis(20),
        })
    }

    /// Bits per second of the clip's payload.
    #[cfg(test)]
    pub fn bitrate(&self) -> f64 {
        let bytes: usize = self.frames.iter().map(|f| f.data.len()).sum();
        let secs = self.frame_interval.as_secs_f64() * self.frames.len() as f64;
        bytes as f64 * 8.0 / secs
    }
}

/// Plays a clip in a loop, paced by the caller's clock.
#[derive(Debug)]
pub struct Player {
    clip: Arc<Clip>,
    next: usize,
    next_at: Instant,
    /// Frames to skip ahead to the next keyframe (a keyframe was requested).
    keyframe_wanted: bool,
    /// The next frame must be a keyframe, however near the next one is
    /// (an encoding resumed after a pause).
    keyframe_forced: bool,
}

impl Player {
    /// Starts at the clip's first frame (a keyframe), due at `start`.
    pub fn new(clip: Arc<Clip>, start: Instant) -> Self {
        Player {
            clip,
            next: 0,
            next_at: start,
            keyframe_wanted: false,
            keyframe_forced: false,
        }
    }

    /// When the next frame is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_at
    }

    /// A keyframe was asked for: the next frame sent is the clip's next
    /// keyframe (the clips have one every second).
    pub fn request_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    /// The next frame sent is a keyframe: the encoding was paused and its
    /// receivers need one to start decoding again.
    pub fn restart_at_keyframe(&mut self) {
        self.keyframe_forced = true;
    }

    /// The frame due at `now`, if any. Frames that fell more than a second
    /// behind (the bot was starved) are skipped, so the stream stays live.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        if now < self.next_at {
            return None;
        }
        let interval = self.clip.frame_interval;
        if now.duration_since(self.next_at) > Duration::from_secs(1) {
            let behind = now.duration_since(self.next_at).as_secs_f64() / interval.as_secs_f64();
            let skip = behind as usize;
            self.next = (self.next + skip) % self.clip.frames.len();
            self.next_at += interval * skip as u32;
        }
        let n = self.clip.frames.len();
        let mut frame = self.clip.frames[self.next].clone();
        if self.keyframe_wanted || self.keyframe_forced {
            // Jump to the next keyframe unless it is near (a forced one is
            // never waited for); the time stamp still advances by the
            // normal frame duration, so playback stays smooth.
            if let Some(k) = (0..n)
                .map(|i| (self.next + i) % n)
                .find(|&i| self.clip.frames[i].keyframe)
            {
                let jump = (k + n - self.next) % n;
                let far = jump as f64 * interval.as_secs_f64() > 0.2;
                if jump > 0 && (far || self.keyframe_forced) {
                    self.next = k;
                    frame = self.clip.frames[k].clone();
                }
            }
            self.keyframe_wanted = false;
            self.keyframe_forced = false;
        }
        self.next = (self.next + 1) % n;
        self.next_at += interval;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("media")
    }

    #[test]
    fn reads_the_committed_clips() {
        for (file, kbps) in [
            ("vp8-150k.ivf", 150.0),
            ("vp8-500k.ivf", 500.0),
            ("vp8-1500k.ivf", 1500.0),
        ] {
            let clip = Clip::read_ivf(&media_dir().join(file)).unwrap();
            assert_eq!(clip.frames.len(), 120, "{file}");
            assert!(clip.frames[0].keyframe);
            let keys = clip.frames.iter().filter(|f| f.keyframe).count();
            assert_eq!(keys, 4, "{file}: one keyframe a second");
            let rate = clip.bitrate() / 1000.0;
            assert!(
                rate > kbps * 0.6 && rate < kbps * 1.4,
                "{file}: {rate} kbps"
            );
            assert_eq!(clip.frames[1].duration_rtp, 3000);
        }
        let opus = Clip::read_ogg_opus(&media_dir().join("opus-32k.ogg")).unwrap();
        assert!(
            (195..=205).contains(&opus.frames.len()),
            "{}",
            opus.frames.len()
        );
        assert!(opus.frames.iter().all(|f| !f.data.is_empty()));
    }

    #[test]
    fn rejects_bad_files() {
        assert!(matches!(
            Clip::parse_ivf(b"nope", "x"),
            Err(ClipError::NotIvf(_))
        ));
        let mut ivf = b"DKIF\0\0\x20\0VP80".to_vec();
        ivf.resize(32, 0);
        ivf[16] = 30;
        ivf[20] = 1;
        ivf.extend_from_slice(&[100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            Clip::parse_ivf(&ivf, "x"),
            Err(ClipError::Corrupt(_))
        ));
        assert!(matches!(
            Clip::parse_ogg_opus(b"OggSxx", "x"),
            Err(ClipError::Corrupt(_))
        ));
    }

    fn clip(keys: &[bool]) -> Arc<Clip> {
        Arc::new(Clip {
            frames: keys
                .iter()
                .enumerate()
                .map(|(i, &k)| Frame {
                    data: Bytes::from(vec![i as u8]),
                    duration_rtp: 3000,
                    keyframe: k,
                })
                .collect(),
            frame_interval: Duration::from_millis(100),
        })
    }

    #[test]
    fn player_paces_loops_and_jumps_to_keyframes() {
        let t0 = Instant::now();
        let c = clip(&[true, false, false, false, false, true, false, false]);
        let mut p = Player::new(c, t0);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(p.poll_frame(ms(0)).unwrap().data[0], 0);
        assert_eq!(p.poll_frame(ms(50)), None);
        assert_eq!(p.poll_timeout(), ms(100));
        assert_eq!(p.poll_frame(ms(100)).unwrap().data[0], 1);
        // Keyframe request at frame 2: frame 5 is 300 ms away, so jump.
        p.request_keyframe();
        let f = p.poll_frame(ms(200)).unwrap();
        assert_eq!((f.data[0], f.keyframe), (5, true));
        assert_eq!(p.poll_frame(ms(300)).unwrap().data[0], 6);
        assert_eq!(p.poll_frame(ms(400)).unwrap().data[0], 7);
        // Loops back to the start.
        assert_eq!(p.poll_frame(ms(500)).unwrap().data[0], 0);
        // Far behind: skips ahead rather than bursting.
        let f = p.poll_frame(ms(2600)).unwrap();
        assert_eq!(f.data[0], (1 + 20) % 8);
        assert!(p.poll_frame(ms(2600)).is_none());
        // At frame 6 a plain request waits for frame 0 (200 ms away) ...
        p.request_keyframe();
        assert_eq!(p.poll_frame(ms(2700)).unwrap().data[0], 6);
        // ... a forced one jumps even to a near keyframe, and once.
        p.restart_at_keyframe();
        let f = p.poll_frame(ms(2800)).unwrap();
        assert_eq!((f.data[0], f.keyframe), (0, true));
        assert_eq!(p.poll_frame(ms(2900)).unwrap().data[0], 1);
        // Already at a keyframe: nothing to skip.
        let mut p = Player::new(clip(&[true, false]), t0);
        p.restart_at_keyframe();
        assert_eq!(p.poll_frame(t0).unwrap().data[0], 0);
        assert_eq!(p.poll_frame(ms(100)).unwrap().data[0], 1);
    }
}
