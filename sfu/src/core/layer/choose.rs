//! Which layer a subscriber should get of a track, from how it shows the
//! track (adaptive stream) and what it asked for: the smallest layer at
//! least as large as the picture it renders, never above its own caps,
//! nothing for a track it does not show or paused.

use super::Layer;
use signaling::media::{Quality, TrackSettings};

/// What the subscriber can be given of one layer (a simulcast stream or
/// an SVC spatial layer), lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOption {
    /// Coded size, when the codec has told it.
    pub size: Option<(u16, u16)>,
    /// Media arrives on it, or it can be resumed at the publisher.
    pub available: bool,
}

/// A rendered size within this share of a layer's size is close enough
/// (a 640x360 layer serves a 680x380 tile).
const FIT: f32 = 0.9;

/// The layer to target, `None` for nothing. `visible` must already take
/// the hidden grace period into account.
pub fn choose(options: &[LayerOption], s: &TrackSettings, visible: bool) -> Option<Layer> {
    if s.paused || !visible || options.is_empty() {
        return None;
    }
    let n = options.len();
    let cap_quality = match s.quality {
        Some(Quality::Low) => 0,
        Some(Quality::Medium) => (n - 1) / 2,
        _ => n - 1,
    };
    let fits_max = |i: usize| match (options[i].size, s.max_width, s.max_height) {
        (Some((w, h)), mw, mh) => {
            mw.is_none_or(|m| w as u32 <= m) && mh.is_none_or(|m| h as u32 <= m)
        }
        // Unknown size: assume each layer halves the one above, from 1280x720.
        (None, mw, mh) => {
            let (w, h) = assumed_size(i, n);
            mw.is_none_or(|m| w <= m) && mh.is_none_or(|m| h <= m)
        }
    };
    let mut cap = cap_quality;
    while cap > 0 && !fits_max(cap) {
        cap -= 1;
    }
    let wanted = if s.width == 0 && s.height == 0 {
        cap
    } else {
        (0..=cap)
            .find(|&i| {
                let (w, h) = options[i]
                    .size
                    .map_or_else(|| assumed_size(i, n), |(w, h)| (w as u32, h as u32));
                w as f32 >= s.width as f32 * FIT && h as f32 >= s.height as f32 * FIT
            })
            .unwrap_or(cap)
    };
    // An unavailable layer is no use: the nearest available one below it,
    // else above it.
    let pick = (0..=wanted)
        .rev()
        .find(|&i| options[i].available)
        .or_else(|| (wanted + 1..n).find(|&i| options[i].available))
        .unwrap_or(wanted);
    Some(Layer::new(pick as u8, u8::MAX))
}

fn assumed_size(i: usize, n: usize) -> (u32, u32) {
    let shift = (n - 1 - i) as u32;
    (1280 >> shift, 720 >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three(avail: [bool; 3]) -> Vec<LayerOption> {
        [(320, 180), (640, 360), (1280, 720)]
            .iter()
            .zip(avail)
            .map(|(s, a)| LayerOption {
                size: Some(*s),
                available: a,
            })
            .collect()
    }

    fn at(w: u32, h: u32) -> TrackSettings {
        TrackSettings {
            width: w,
            height: h,
            ..Default::default()
        }
    }

    #[test]
    fn the_smallest_layer_that_covers_the_rendered_size() {
        let o = three([true; 3]);
        let pick = |s: &TrackSettings| choose(&o, s, true).map(|l| l.spatial);
        assert_eq!(pick(&at(160, 90)), Some(0));
        assert_eq!(pick(&at(320, 180)), Some(0));
        assert_eq!(pick(&at(340, 190)), Some(0), "within 10% of the low layer");
        assert_eq!(pick(&at(400, 225)), Some(1), "larger than the low layer");
        assert_eq!(pick(&at(680, 380)), Some(1), "within 10%");
        assert_eq!(pick(&at(1920, 1080)), Some(2));
        assert_eq!(
            pick(&TrackSettings::default()),
            Some(2),
            "size unknown: the best"
        );
    }

    #[test]
    fn caps_hidden_and_paused() {
        let o = three([true; 3]);
        let big = at(1280, 720);
        let q = |q| TrackSettings {
            quality: Some(q),
            ..big.clone()
        };
        assert_eq!(
            choose(&o, &q(Quality::Low), true),
            Some(Layer::new(0, u8::MAX))
        );
        assert_eq!(
            choose(&o, &q(Quality::Medium), true),
            Some(Layer::new(1, u8::MAX))
        );
        assert_eq!(
            choose(&o, &q(Quality::High), true),
            Some(Layer::new(2, u8::MAX))
        );
        let max = TrackSettings {
            max_width: Some(700),
            ..big.clone()
        };
        assert_eq!(choose(&o, &max, true).unwrap().spatial, 1);
        assert_eq!(choose(&o, &big, false), None, "not shown");
        let paused = TrackSettings {
            paused: true,
            ..big
        };
        assert_eq!(choose(&o, &paused, true), None);
        assert_eq!(choose(&[], &at(1, 1), true), None);
    }

    #[test]
    fn unavailable_layers_give_way_to_the_nearest_below() {
        let o = three([true, false, false]);
        assert_eq!(choose(&o, &at(1280, 720), true).unwrap().spatial, 0);
        let o = three([false, false, true]);
        assert_eq!(choose(&o, &at(320, 180), true).unwrap().spatial, 2);
        // Sizes unknown (H.264): layers assumed to halve from 720p.
        let o = vec![
            LayerOption {
                size: None,
                available: true
            };
            3
        ];
        assert_eq!(choose(&o, &at(600, 338), true).unwrap().spatial, 1);
    }
}
