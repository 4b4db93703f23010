//! The sweep's chart: server CPU per forwarded packet and delivery against
//! participants, as a small hand-written SVG.

use std::fmt::Write as _;

use crate::report::Report;

/// An SVG line chart with two y axes: µs per forwarded packet (left) and
/// delivery in percent (right).
pub fn svg(title: &str, runs: &[Report]) -> String {
    let (w, h) = (720.0, 420.0);
    let (l, r, t, b) = (70.0, 70.0, 50.0, 60.0);
    let pw = w - l - r;
    let ph = h - t - b;
    let xs: Vec<f64> = runs.iter().map(|x| x.bots as f64).collect();
    let cpu: Vec<Option<f64>> = runs
        .iter()
        .map(|x| x.server_cpu_us_per_forwarded_packet)
        .collect();
    let del: Vec<f64> = runs.iter().map(|x| x.delivery_ratio * 100.0).collect();
    let xmax = xs.iter().cloned().fold(1.0, f64::max);
    let cmax = cpu.iter().flatten().cloned().fold(1.0, f64::max) * 1.2;
    let dmin = del.iter().cloned().fold(100.0, f64::min).min(90.0).floor();
    let x = |v: f64| l + v / xmax * pw;
    let yc = |v: f64| t + ph - v / cmax * ph;
    let yd = |v: f64| t + ph - (v - dmin) / (100.0 - dmin) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    // Axes and grid.
    let _ = writeln!(
        s,
        r##"<path d="M{l} {t} V{} H{}" stroke="#333" fill="none"/>"##,
        t + ph,
        l + pw
    );
    let _ = writeln!(
        s,
        r##"<path d="M{} {t} V{}" stroke="#333" fill="none"/>"##,
        l + pw,
        t + ph
    );
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let yy = t + ph - f * ph;
        let _ = writeln!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{yy}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end" fill="#c0392b">{:.1}</text><text x="{}" y="{}" fill="#2471a3">{:.1}</text>"##,
            l + pw,
            l - 6.0,
            yy + 4.0,
            f * cmax,
            l + pw + 6.0,
            yy + 4.0,
            dmin + f * (100.0 - dmin)
        );
        let xv = f * xmax;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.0}</text>"#,
            x(xv),
            t + ph + 18.0,
            xv
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">participants (bots)</text>"#,
        l + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle" fill="#c0392b">server CPU per forwarded packet (µs)</text>"##,
        t + ph / 2.0
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate({} {}) rotate(90)" text-anchor="middle" fill="#2471a3">delivery (%)</text>"##,
        w - 16.0,
        t + ph / 2.0
    );
    // Series.
    let cpu_pts: Vec<String> = xs
        .iter()
        .zip(&cpu)
        .filter_map(|(&a, c)| c.map(|c| format!("{:.1},{:.1}", x(a), yc(c))))
        .collect();
    let del_pts: Vec<String> = xs
        .iter()
        .zip(&del)
        .map(|(&a, &d)| format!("{:.1},{:.1}", x(a), yd(d)))
        .collect();
    for (pts, color) in [(&cpu_pts, "#c0392b"), (&del_pts, "#2471a3")] {
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        for p in pts.iter() {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="3.5" fill="{color}"/>"#);
        }
    }
    // Legend.
    for (i, (label, color)) in [
        ("server CPU per forwarded packet (µs)", "#c0392b"),
        ("delivery (%)", "#2471a3"),
    ]
    .iter()
    .enumerate()
    {
        let ly = t + ph - 34.0 + i as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{label}</text>"#,
            l + 10.0,
            l + 30.0,
            l + 36.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
