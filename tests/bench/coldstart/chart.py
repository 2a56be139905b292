"""A horizontal bar chart as a standalone SVG (no matplotlib): one bar per strategy, its median
in seconds written at the end, a min-max whisker, a seconds axis with grid lines, and optionally
each bar cut into consecutive segments (a legend names them)."""

import math
from xml.sax.saxutils import escape

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def nice_step(span, ticks=6):
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def bar_chart(title, subtitle, bars, legend=(), width=1000):
    """bars: [{"label", "median", "min", "max", "note", "segments"}] in display order (top first);
    segments: [(start, end, key)] drawn over the bar, colored by legend [(key, color, text)]."""
    subtitles = [subtitle] if isinstance(subtitle, str) else list(subtitle)
    label_w, right_pad, bar_h, gap = 340, 190, 34, 18
    legend_y = 52 + 18 * len(subtitles)
    top = legend_y + 8 + (26 if legend else 0)
    plot_w = width - label_w - right_pad
    height = top + len(bars) * (bar_h + gap) + 56
    top_value = max(max(b["max"], b["median"]) for b in bars) if bars else 1.0
    step = nice_step(top_value)
    axis_max = step * math.ceil(top_value / step)

    def x(v):
        return label_w + plot_w * v / axis_max

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s">'
           % (width, height, width, height, FONT),
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           '<text x="20" y="34" font-size="21" font-weight="bold" fill="#1a202c">%s</text>' % escape(title),
           ]
    for i, line in enumerate(subtitles):
        out.append('<text x="20" y="%d" font-size="13" fill="#4a5568">%s</text>' % (58 + 18 * i, escape(line)))
    colors = {key: color for key, color, _ in legend}
    lx = 20
    for key, color, text in legend:
        out.append('<rect x="%d" y="%d" width="14" height="14" fill="%s"/>' % (lx, legend_y, color))
        out.append('<text x="%d" y="%d" font-size="13" fill="#1a202c">%s</text>' % (lx + 20, legend_y + 12, escape(text)))
        lx += 34 + int(len(text) * 6.6)
    axis_y = top + len(bars) * (bar_h + gap)
    tick = 0.0
    while tick <= axis_max + 1e-9:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e2e8f0" stroke-width="1"/>'
                   % (x(tick), top - 8, x(tick), axis_y))
        out.append('<text x="%.1f" y="%d" font-size="12" fill="#4a5568" text-anchor="middle">%g</text>'
                   % (x(tick), axis_y + 18, round(tick, 6)))
        tick += step
    out.append('<text x="%.1f" y="%d" font-size="13" fill="#4a5568" text-anchor="middle">seconds from container start to the first answer</text>'
               % (label_w + plot_w / 2, axis_y + 42))
    for i, b in enumerate(bars):
        y = top + i * (bar_h + gap)
        mid = y + bar_h / 2
        out.append('<text x="%d" y="%.1f" font-size="14" fill="#1a202c" text-anchor="end" dominant-baseline="middle">%s</text>'
                   % (label_w - 12, mid, escape(b["label"])))
        segments = [s for s in b.get("segments") or [] if s[1] > s[0]]
        if segments:
            for start, end, key in segments:
                out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                           % (x(start), y, max(0.5, x(end) - x(start)), bar_h, colors.get(key, "#a0aec0")))
        else:
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="#2b6cb0" rx="3"/>'
                       % (label_w, y, max(1.0, x(b["median"]) - label_w), bar_h))
        # min-max whisker
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1a202c" stroke-width="1.5"/>'
                   % (x(b["min"]), mid, x(b["max"]), mid))
        for v in (b["min"], b["max"]):
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1a202c" stroke-width="1.5"/>'
                       % (x(v), mid - 7, x(v), mid + 7))
        text = "%.2f s" % b["median"]
        if b.get("note"):
            text += "  (%s)" % b["note"]
        out.append('<text x="%.1f" y="%.1f" font-size="15" font-weight="bold" fill="#1a202c" dominant-baseline="middle">%s</text>'
                   % (max(x(b["max"]), x(b["median"])) + 10, mid, escape(text)))
    out.append("</svg>")
    return "\n".join(out) + "\n"
