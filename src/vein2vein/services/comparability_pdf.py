"""The comparability report of two sites or two processes as a PDF (A4 portrait, WeasyPrint).

What it shows: the product, stage and groups compared, when and by whom it was printed; the
overall conclusion in a banner; the method (Schuirmann's TOST with its margin and its basis,
α and the confidence level; the quality range with its k and the fraction required); one
table of every attribute (n, mean and SD per group, the difference with its confidence
interval, the margin, the TOST p-value, the quality range count, the conclusion); then per
attribute a small plot (both groups' values side by side with the reference's quality range,
drawn here as SVG) with its conclusion and reason in words; the differences against their
margins in one plot; what was not compared and why; and the overall conclusion again. Every
page names the product and the comparison, the printer and the page number.

Nothing is computed here but the drawing: the statistics are the :class:`Comparison`'s.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape

from vein2vein.analytics.comparability import AttributeComparison
from vein2vein.domain.people import Actor
from vein2vein.services._record_pdf_css import CSS as _BASE_CSS
from vein2vein.services.comparability import Comparison

__all__ = ["comparison_html", "comparison_pdf"]

_CSS = (
    _BASE_CSS
    + """
.c-attr { width: 19%; } .c-grp { width: 13%; } .c-diff { width: 13%; } .c-marg { width: 12%; }
.c-p { width: 7%; } .c-qr { width: 11%; } .c-conc { width: 12%; }
.method p { margin: 2pt 0; } .method { border: 0.6pt solid #bbb; background: #f8f8f8;
  padding: 3pt 5pt; margin: 4pt 0; }
table.panels { table-layout: fixed; } table.panels td { width: 50%; padding: 4pt 4pt 8pt; }
.panel { break-inside: avoid; } .panel h3 { margin: 0 0 2pt; }
.verdict { font-weight: bold; } .verdict.good { color: #14532d; } .verdict.bad { color: #b42318; }
.reason { font-size: 7pt; color: #333; margin-top: 1pt; } svg { display: block; }
td.num { text-align: right; } th { overflow-wrap: normal; }
"""
)

_GREY, _BLUE, _RED, _INK, _GREEN = "#8a94a3", "#1d4ed8", "#b42318", "#333333", "#15803d"


def _e(value: object) -> str:
    return escape(str(value))


def _n(value: float) -> str:
    """A number with 3 significant digits, as the report prints it."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.2g}"


def _tick(value: float, step: float) -> str:
    """A tick label with as many decimals as the step between ticks needs."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def comparison_pdf(
    comparison: Comparison, *, by: Actor | None = None, at: datetime | None = None
) -> bytes:
    """The comparability report of ``comparison`` as PDF bytes, printed by ``by`` (named in
    the footer when given) at ``at`` (the application clock's now; the system clock's when
    not given)."""
    from weasyprint import HTML

    return bytes(HTML(string=comparison_html(comparison, by=by, at=at)).write_pdf())


def comparison_html(
    comparison: Comparison, *, by: Actor | None = None, at: datetime | None = None
) -> str:
    """The report as HTML (what the PDF is made from)."""
    at = at or datetime.now(UTC)
    printer = f" by {_e(by.full_name)} ({_e(by.user_id)})" if by is not None else ""
    c = comparison
    what = "manufacturing sites" if c.group == "site" else "processes"
    title = f"{c.test} against {c.reference}"
    running = (
        '<div class="running"><table><tr>'
        f"<td>Comparability report · <b>{_e(c.product)}</b> · {_e(title)}</td>"
        f'<td class="r">{_e(c.stage)} stage</td></tr></table></div>'
        f'<div class="printed">Printed {_e(_when(at))}{printer}'
        " · computed from the verified QC results in vein2vein at that time</div>"
    )
    counts = {name: (len(ref), len(test)) for name, (ref, test) in c.values.items()}
    most = max(counts.values(), default=(0, 0))
    header = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td><th>{_e(k2)}</th><td>{_e(v2)}</td></tr>"
        for k, v, k2, v2 in (
            ("Product", c.product, "Stage", c.stage),
            ("Compared", what, "Printed", _when(at)),
            (
                "Reference",
                f"{c.reference} ({most[0]} batches)",
                "Test",
                f"{c.test} ({most[1]} batches)",
            ),
            ("Attributes compared", len(c.rows), "Not compared", len(c.skipped)),
            ("Results tested", f"since {_when(c.since)}" if c.since else "all", "", ""),
        )
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
    <title>Comparability report {_e(c.product)}: {_e(title)}</title><style>{_CSS}</style>
    </head><body>
    {running}
    <h1>Comparability report — {_e(title)}</h1>
    <p class="subtitle">{_e(c.product)}, {_e(c.stage)} attributes: does {_e(c.test)} make the
    product as {_e(c.reference)} does?</p>
    <table class="header">{header}</table>
    {_banner(c)}
    {_method(c)}
    {_table(c)}
    {_panels(c)}
    {_differences(c)}
    {_skipped(c)}
    <h2>Conclusion</h2>
    {_overall(c)}
    <p class="end">— end of the comparability report —</p>
    </body></html>"""


def _overall_text(c: Comparison) -> tuple[str, str]:
    if not c.rows:
        return "bad", "NOTHING COMPARED — no attribute has at least 3 results in each group"
    failing = [c.attributes[r.attribute].title for r in c.rows if r.conclusion != "equivalent"]
    if not failing:
        return "good", (
            f"COMPARABLE — {c.test} is equivalent to {c.reference} on all {len(c.rows)} "
            "attributes compared"
        )
    return "bad", (
        f"NOT SHOWN COMPARABLE — {len(failing)} of {len(c.rows)} attributes not shown "
        f"equivalent: {', '.join(failing)}"
    )


def _banner(c: Comparison) -> str:
    kind, text = _overall_text(c)
    return f'<div class="banner {kind}">{_e(text)}</div>'


def _overall(c: Comparison) -> str:
    kind, text = _overall_text(c)
    lines = [f'<p class="verdict {kind}">{_e(text)}.</p>']
    if kind == "bad" and c.rows:
        lines.append(
            "<p>\u201cNot shown equivalent\u201d means the data do not demonstrate that the "
            "groups are the same within the stated margin; it is not proof that they differ. "
            "Each such attribute needs an assessment of its impact (more batches, a justified "
            "margin, or an investigation of the cause).</p>"
        )
    return "".join(lines)


def _method(c: Comparison) -> str:
    if not c.rows:
        return ""
    first = c.rows[0]
    alpha = first.tost.alpha
    confidence = f"{100 * (1 - 2 * alpha):.0f} %"
    bases = sorted({r.margin_basis for r in c.rows})
    q = first.quality_range
    return (
        "<h2>Method</h2><div class='method'>"
        f"<p><b>Groups.</b> Reference: the batches of {_e(c.reference)}; test: those of "
        f"{_e(c.test)}; one verified result per batch and attribute (a retest replaces the "
        f"result it repeats). Every {_e(c.stage)} attribute with numbers is compared.</p>"
        "<p><b>Equivalence of the means (TOST).</b> Schuirmann's two one-sided tests, Welch "
        "form (unequal variances; Welch-Satterthwaite degrees of freedom), each one-sided test "
        f"at α = {alpha:g}. The means are equivalent when the {confidence} confidence interval "
        "of the difference (test − reference) lies inside ± the equivalence margin, the "
        f"largest difference taken not to matter. Margin: {_e('; '.join(bases))} (the FDA "
        "tier-1 margin for analytical similarity).</p>"
        f"<p><b>Quality range.</b> At least {100 * q.required_fraction:.0f} % of the test "
        f"values must lie inside the reference mean ± {q.k:g} reference standard deviations.</p>"
        "<p><b>Conclusion per attribute.</b> Equivalent when both hold; otherwise \u201cnot "
        "shown equivalent\u201d, with the test that failed named.</p></div>"
    )


def _table(c: Comparison) -> str:
    if not c.rows:
        return ""
    body = []
    for r in c.rows:
        a, t, q = c.attributes[r.attribute], r.tost, r.quality_range
        ok = r.conclusion == "equivalent"
        css = "" if ok else " class='oop-row'"
        body.append(
            f"<tr{css}><td>{_e(a.title)}<div class='sub'>{_e(a.unit)}</div></td>"
            f"<td class='num'>{t.n_reference} · {_n(t.mean_reference)} ± {_n(t.sd_reference)}</td>"
            f"<td class='num'>{t.n_test} · {_n(t.mean_test)} ± {_n(t.sd_test)}</td>"
            f"<td class='num'>{_n(t.difference)}<div class='sub'>{_n(t.ci_low)} to "
            f"{_n(t.ci_high)}</div></td>"
            f"<td class='num'>± {_n(t.margin)}<div class='sub'>{_e(r.margin_basis)}</div></td>"
            f"<td class='num'>{_p(t.p_value)}</td>"
            f"<td class='num'>{q.inside} / {q.n_test}<div class='sub'>{_n(q.low)} – "
            f"{_n(q.high)}</div></td>"
            f"<td><span class='tag {'closed' if ok else 'oop'}'>"
            f"{'EQUIVALENT' if ok else 'NOT SHOWN'}</span></td></tr>"
        )
    confidence = f"{100 * (1 - 2 * c.rows[0].tost.alpha):.0f} %"
    return (
        "<h2>Results</h2><p class='sub'>Mean ± SD in the attribute's unit; difference = "
        f"{_e(c.test)} − {_e(c.reference)} with its {confidence} confidence interval; quality "
        "range: test values inside the range / test values.</p>"
        "<table class='list'><thead><tr><th class='c-attr'>Attribute</th>"
        f"<th class='c-grp'>{_e(c.reference)} n · mean ± SD</th>"
        f"<th class='c-grp'>{_e(c.test)} n · mean ± SD</th>"
        "<th class='c-diff'>Difference (CI)</th><th class='c-marg'>Margin</th>"
        "<th class='c-p'>TOST p</th><th class='c-qr'>Quality range</th>"
        f"<th class='c-conc'>Conclusion</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _panels(c: Comparison) -> str:
    if not c.rows:
        return ""
    cells = [_panel(c, r) for r in c.rows]
    rows = "".join(
        f"<tr><td>{cells[i]}</td><td>{cells[i + 1] if i + 1 < len(cells) else ''}</td></tr>"
        for i in range(0, len(cells), 2)
    )
    return (
        "<h2>Per attribute</h2><p class='sub'>Each dot is one batch (reference grey, test "
        "blue, red: outside the quality range); the black bar is each group's mean; the green "
        "band is the reference quality range.</p>"
        f"<table class='panels'>{rows}</table>"
    )


def _panel(c: Comparison, r: AttributeComparison) -> str:
    a = c.attributes[r.attribute]
    ok = r.conclusion == "equivalent"
    verdict = "Equivalent" if ok else "Not shown equivalent"
    return (
        f"<div class='panel'><h3>{_e(a.title)}</h3>{_strip_svg(c, r)}"
        f"<div class='verdict {'good' if ok else 'bad'}'>{verdict}</div>"
        f"<div class='reason'>{_e(r.reason)}</div></div>"
    )


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high]."""
    span = high - low or abs(high) or 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(count + 3) if first + i * step <= high + step / 2]


def _strip_svg(c: Comparison, r: AttributeComparison) -> str:
    """Both groups' values side by side, the reference quality range, each group's mean."""
    width, height, left, top, bottom = 250.0, 130.0, 44.0, 8.0, 22.0
    reference, test = c.values[r.attribute]
    q, t = r.quality_range, r.tost
    everything = [*reference, *test, q.low, q.high]
    ticks = _ticks(min(everything), max(everything))
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    y_low, y_high = min(ticks[0], min(everything)), max(ticks[-1], max(everything))

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - (value - y_low) / ((y_high - y_low) or 1))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="DejaVu Sans" font-size="7">',
        f'<rect x="{left}" y="{y(q.high):.1f}" width="{width - left - 4:g}" '
        f'height="{max(y(q.low) - y(q.high), 0.5):.1f}" fill="{_GREEN}" fill-opacity="0.12"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="{_INK}" '
        'stroke-width="0.6"/>',
    ]
    for tick in ticks:
        if y_low <= tick <= y_high:
            parts.append(
                f'<line x1="{left - 3}" y1="{y(tick):.1f}" x2="{left}" y2="{y(tick):.1f}" '
                f'stroke="{_INK}" stroke-width="0.6"/><text x="{left - 5}" y="{y(tick) + 2.5:.1f}" '
                f'text-anchor="end">{_e(_tick(tick, step))}</text>'
            )
    centres = (left + (width - left) * 0.3, left + (width - left) * 0.72)
    outside = set(q.outside)
    for g, (values, colour) in enumerate(((reference, _GREY), (test, _BLUE))):
        for k, value in enumerate(values):
            dx = ((k * 0.6180339887) % 1 - 0.5) * 44
            fill = _RED if g == 1 and k in outside else colour
            parts.append(
                f'<circle cx="{centres[g] + dx:.1f}" cy="{y(value):.1f}" r="2.2" fill="{fill}" '
                'fill-opacity="0.75"/>'
            )
        mean = (t.mean_reference, t.mean_test)[g]
        parts.append(
            f'<line x1="{centres[g] - 30:.1f}" y1="{y(mean):.1f}" x2="{centres[g] + 30:.1f}" '
            f'y2="{y(mean):.1f}" stroke="#000" stroke-width="2"/>'
        )
        name = (c.reference, c.test)[g]
        parts.append(
            f'<text x="{centres[g]:.1f}" y="{height - 8}" text-anchor="middle" font-size="8">'
            f"{_e(name)} (n = {len(values)})</text>"
        )
    unit = c.attributes[r.attribute].unit
    if unit:
        parts.append(
            f'<text x="8" y="{(height - bottom + top) / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 8 {(height - bottom + top) / 2:.1f})">{_e(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _differences(c: Comparison) -> str:
    """Every attribute's difference and confidence interval as a share of its margin."""
    if not c.rows:
        return ""
    width, row, left, right = 660.0, 20.0, 170.0, 20.0
    height = row * len(c.rows) + 34
    scaled = [(r.tost.difference, r.tost.ci_low, r.tost.ci_high) for r in c.rows]
    shares = [(d / r.tost.margin, lo / r.tost.margin, hi / r.tost.margin)
              for (d, lo, hi), r in zip(scaled, c.rows, strict=True)]  # fmt: skip
    reach = max([1.5] + [max(abs(lo), abs(hi)) * 1.1 for _, lo, hi in shares])

    def x(value: float) -> float:
        return left + (width - left - right) * (value + reach) / (2 * reach)

    plot_bottom = row * len(c.rows) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="DejaVu Sans" font-size="7.5">',
        f'<rect x="{x(-1):.1f}" y="2" width="{x(1) - x(-1):.1f}" height="{plot_bottom - 2}" '
        f'fill="{_GREEN}" fill-opacity="0.12"/>',
        f'<line x1="{x(0):.1f}" y1="2" x2="{x(0):.1f}" y2="{plot_bottom}" stroke="{_INK}" '
        'stroke-width="0.5" stroke-dasharray="2,2"/>',
    ]
    for i, (r, (d, lo, hi)) in enumerate(zip(c.rows, shares, strict=True)):
        cy = 6 + row * i + row / 2
        colour = _GREEN if r.tost.equivalent else _RED
        title = c.attributes[r.attribute].title
        parts.append(
            f'<text x="{left - 8}" y="{cy + 2.5:.1f}" text-anchor="end">{_e(title)}</text>'
            f'<line x1="{x(lo):.1f}" y1="{cy:.1f}" x2="{x(hi):.1f}" y2="{cy:.1f}" '
            f'stroke="{_INK}" stroke-width="1.2"/>'
            f'<circle cx="{x(d):.1f}" cy="{cy:.1f}" r="3.2" fill="{colour}"/>'
        )
    for value, text in ((-1, "− margin"), (0, "0"), (1, "+ margin")):
        parts.append(
            f'<text x="{x(value):.1f}" y="{plot_bottom + 11}" text-anchor="middle">{text}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{plot_bottom + 24}" '
        'text-anchor="middle">difference of means (test − reference) as a share of the '
        "margin, with its confidence interval</text></svg>"
    )
    return (
        "<h2>Differences against their margins</h2><p class='sub'>An interval inside the "
        "green band shows equivalence by TOST.</p>" + "".join(parts)
    )


def _skipped(c: Comparison) -> str:
    note = c.out_of_spec_note()
    left = f"<p class='note' data-testid='out-of-spec'>{_e(note)}</p>" if note else ""
    if not c.skipped:
        return left
    rows = "".join(
        f"<tr><td>{_e(c.attributes[name].title if name in c.attributes else name)}</td>"
        f"<td>{_e(why)}</td></tr>"
        for name, why in c.skipped
    )
    return left + (
        "<h2>Not compared</h2><table class='list'><thead><tr><th>Attribute</th>"
        f"<th>Why</th></tr></thead><tbody>{rows}</tbody></table>"
    )
