#!/usr/bin/env python3
"""Draws a soak run's samples (loadtest/soak.sh's samples.csv) as an SVG.

    loadtest/soak-chart.py soak-out/samples.csv soak-out/soak.svg [title]

Top panel: the server's resident memory (MiB). Bottom panel: participants
and open file descriptors. Time in minutes from the start of the load. Plain
SVG, no plotting library: the chart is two polylines per panel.
"""
import csv
import sys

W, PANEL_H, LEFT, RIGHT, TOP, GAP = 900, 220, 70, 20, 40, 50


def read(path):
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        for k in r:
            if k != "phase":
                r[k] = int(r[k])
    return rows


def nice_max(v):
    """A round number at least v, for the top of an axis."""
    return min(step * 10**exp for step in (1, 2, 5) for exp in range(7) if step * 10**exp >= v)


def panel(out, y0, rows, series, t_max, label):
    """Draws one panel at height y0 with `series` [(key, colour, scale, name)]."""
    h = PANEL_H
    x = lambda t: LEFT + (W - LEFT - RIGHT) * t / max(t_max, 1)
    top = nice_max(max(max(r[k] * s for r in rows) for k, _, s, _ in series) * 1.1 or 1)
    y = lambda v: y0 + h - h * v / top
    out.append(f'<rect x="{LEFT}" y="{y0}" width="{W - LEFT - RIGHT}" height="{h}" fill="none" stroke="#999"/>')
    for i in range(5):
        v = top * i / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    out.append(f'<text x="14" y="{y0 + h / 2}" transform="rotate(-90 14 {y0 + h / 2})" text-anchor="middle">{label}</text>')
    for n, (k, colour, s, name) in enumerate(series):
        pts = " ".join(f"{x(r['seconds'] / 60):.1f},{y(r[k] * s):.1f}" for r in rows)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out.append(f'<text x="{LEFT + 10 + 170 * n}" y="{y0 - 8}" fill="{colour}">{name}</text>')
    return x


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = read(sys.argv[1])
    title = sys.argv[3] if len(sys.argv) > 3 else "soak"
    t_max = max(r["seconds"] for r in rows) / 60
    h = TOP + 2 * PANEL_H + GAP + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{h}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    x = panel(out, TOP, rows, [("rss_kib", "#c0392b", 1 / 1024, "resident memory (MiB)")], t_max, "MiB")
    y1 = TOP + PANEL_H + GAP
    panel(out, y1, rows, [("participants", "#2471a3", 1, "participants"), ("fds", "#7d3c98", 1, "open file descriptors")], t_max, "count")
    axis_y = y1 + PANEL_H
    step = max(1, round(t_max / 10))
    m = 0
    while m <= t_max:
        out.append(f'<text x="{x(m):.1f}" y="{axis_y + 16}" text-anchor="middle">{m}</text>')
        m += step
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{axis_y + 34}" text-anchor="middle">minutes</text>')
    # Where each round's bots left: the first "after" sample of the round.
    for rnd in sorted({r["round"] for r in rows if r["round"] > 0}):
        after = [r for r in rows if r["phase"] == "after" and r["round"] == rnd]
        if after:
            xa = x(after[0]["seconds"] / 60)
            out.append(f'<line x1="{xa:.1f}" x2="{xa:.1f}" y1="{TOP}" y2="{axis_y}" stroke="#555" stroke-dasharray="4 3"/>')
            # A marker near the right edge takes its label on its left.
            if xa > W - RIGHT - 140:
                out.append(f'<text x="{xa - 4:.1f}" y="{TOP + 14}" fill="#555" text-anchor="end">round {rnd}: bots left</text>')
            else:
                out.append(f'<text x="{xa + 4:.1f}" y="{TOP + 14}" fill="#555">round {rnd}: bots left</text>')
    out.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
