"""``triage report --html``: one self-contained page with inline SVG charts.

No JavaScript, no fonts or styles from the network: the file opens offline
and prints. Every value from the database is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLOURS = {"calm": "#8fb8de", "annoyed": "#f2c14e", "angry": "#f08a4b", "furious": "#c8102e"}
LEVELS = tuple(COLOURS)
BUCKETS = ((1, "< 1 h"), (4, "1-4 h"), (8, "4-8 h"), (24, "8-24 h"), (72, "1-3 days"), (None, "> 3 days"))

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem; min-width: 10rem; }
.card b { display: block; font-size: 1.4rem; }
table { border-collapse: collapse; margin-top: .5rem; } td, th { padding: .2rem .8rem .2rem 0; text-align: left; }
td.n { text-align: right; } svg { display: block; margin-top: .5rem; max-width: 100%; height: auto; } svg text { font-size: 11px; fill: #333; }
.legend span { display: inline-block; margin-right: 1rem; } .legend i { display: inline-block; width: .8rem;
  height: .8rem; margin-right: .3rem; vertical-align: -1px; }
"""


def _fmt(hours: float | None) -> str:
    if hours is None:
        return "–"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f}%"


def _svg_open(label: str, width: int, height: int) -> str:
    return (f'<svg role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">')


def volume_chart(days: list[dict[str, Any]]) -> str:
    """Stacked bars: cases per day by anger level."""
    width, height, left, bottom = 760, 240, 34, 40
    top = max([d["cases"] for d in days] + [1])
    step = (width - left) / max(len(days), 1)
    bar = max(step * 0.75, 1)
    parts = [_svg_open("Cases per day", width, height)]
    plot = height - bottom - 10
    for tick in sorted({0, top // 2, top}):
        y = 10 + plot - plot * tick / top
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    label_every = max(1, len(days) // 10)
    for i, d in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = 10 + plot
        for level in LEVELS:
            h = plot * d[level] / top
            if h:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                             f'fill="{COLOURS[level]}"><title>{escape(d["day"])}: {d[level]} {level}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                         f'{escape(d["day"][5:])}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{lvl}</span>' for lvl, c in COLOURS.items())
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def histogram(hours: list[float]) -> str:
    """Time to first response, bucketed."""
    counts = [0] * len(BUCKETS)
    for h in hours:
        for i, (limit, _) in enumerate(BUCKETS):
            if limit is None or h < limit:
                counts[i] += 1
                break
    width, height, bottom = 760, 200, 30
    top = max(counts + [1])
    step = width / len(BUCKETS)
    parts = [_svg_open("Time to first response", width, height)]
    plot = height - bottom - 20
    for i, ((_, label), n) in enumerate(zip(BUCKETS, counts, strict=True)):
        h = plot * n / top
        x = i * step + step * 0.15
        y = 20 + plot - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="#4b7bec">'
                     f'<title>{escape(label)}: {n}</title></rect>'
                     f'<text x="{x + step * 0.35:.1f}" y="{y - 5:.1f}" text-anchor="middle">{n}</text>'
                     f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbars(rows: list[dict[str, Any]], key: str, colour: str = "#20a39e") -> str:
    """Horizontal bars, one per row (root causes, products)."""
    if not rows:
        return "<p>None recorded in this period.</p>"
    width, row_h, left = 760, 24, 260
    top = max(r["count"] for r in rows)
    height = row_h * len(rows) + 10
    parts = [_svg_open(key, width, height)]
    for i, r in enumerate(rows):
        y = 5 + i * row_h
        w = (width - left - 40) * r["count"] / top
        label = str(r[key])
        label = label if len(label) <= 38 else label[:37] + "…"
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}"/>'
                     f'<text x="{left + w + 5:.1f}" y="{y + 15}">{r["count"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "<p>None.</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v}</td>' if isinstance(v, (int, float)) else f"<td>{escape(str(v))}</td>" for v in row)
        + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render(data: dict[str, Any], shop: str) -> str:
    """The whole page."""
    p, v = data["period"], data["volume"]
    fr, rs, sla, pr, ci = (data[k] for k in ("first_response", "resolution", "sla", "promises", "check_ins"))
    cards = [
        ("cases", v["cases"]),
        ("median first response", _fmt(fr["median_hours"])),
        ("90th pct first response", _fmt(fr["p90_hours"])),
        ("median resolution", _fmt(rs["median_hours"])),
        ("SLA breach rate", _pct(sla["breach_rate"])),
        ("promises kept on time", _pct(pr["on_time_rate"])),
        ("check-ins sent", f"{ci['sent']} / {ci['due']}"),
    ]
    card_html = "".join(f'<div class="card">{escape(label)}<b>{escape(str(value))}</b></div>'
                        for label, value in cards)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(shop)}: support report {escape(p['since'])} to {escape(p['until'])}</title>
<style>{CSS}</style></head><body>
<h1>{escape(shop)}: support report</h1>
<p class="sub">{escape(p['since'])} to {escape(p['until'])} ({escape(p['timezone'])}), generated {escape(p['generated_at'] or '')}</p>
<div class="cards">{card_html}</div>
<h2>Cases per day, by anger level</h2>
{volume_chart(v['by_day'])}
<h2>Time to first response</h2>
{histogram(fr['hours'])}
<h2>Top root causes</h2>
{hbars(data['root_causes'], 'cause')}
<h2>What draws the most anger</h2>
<h3>Topics</h3>
{hbars(data['anger_drivers']['topics'], 'topic', '#f08a4b')}
<h3>Products</h3>
{hbars(data['anger_drivers']['products'], 'product', '#f08a4b')}
<h3>Phrases</h3>
{_table(('phrase', 'messages'), [(r['phrase'], r['count']) for r in data['anger_drivers']['phrases']])}
<h2>By archetype</h2>
{_table(('archetype', 'cases'), list(v['by_archetype'].items()))}
<h2>Promises and check-ins</h2>
{_table(('', 'count'), [('promises due', pr['due']), ('kept on time', pr['kept_on_time']),
                         ('kept late', pr['kept'] - pr['kept_on_time']), ('still open', pr['open']),
                         ('check-ins due', ci['due']), ('check-ins drafted', ci['drafted']),
                         ('check-ins sent', ci['sent']), ('check-ins cancelled (customer wrote first)', ci['cancelled'])])}
<h2>Outcomes</h2>
{_table(('outcome', 'cases'), list(data['outcomes'].items()))}
<h2>Chronic customers (2+ cases)</h2>
{_table(('customer', 'cases', 'angry or furious', 'flagged chronic'),
        [(c['customer'], c['cases'], c['angry_cases'], 'yes' if c['chronic_flag'] else '')
         for c in data['chronic_customers']])}
</body></html>
"""
