"""Charts as inline SVG, drawn offline.

Vega-Altair builds the Vega-Lite specification and vl-convert (Deno and Vega bundled in a
wheel, no browser, no network) renders it to SVG, so the HTML carries its charts and the PDF
prints them as vectors. The French locale gives decimal commas and French month names; the
report's own font (DejaVu Sans, shipped in `fonts/`) is registered with vl-convert, so the
text is measured with the font the reader sees. A masked value is a null: lines break and
bars are missing there (never drawn as 0), and the chart's note says so.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVu Sans"
# The Vega-Lite version Altair writes (e.g. "6.4"); vl-convert bundles it.
VL_VERSION = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
WIDTH = 560
HEIGHT = 220
# Colour-blind safe palette (Okabe-Ito), in a fixed order: the EPCI first.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


@cache
def _fonts_registered() -> bool:
    vlc.register_font_directory(str(FONTS))
    return True


def configured(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The specification of a chart with the report's font, size and palette."""
    spec: dict[str, Any] = (
        chart.configure(font=FONT)
        .configure_view(stroke=None)
        .configure_range(category=PALETTE)
        .configure_axis(labelFontSize=11, titleFontSize=11)
        .configure_legend(labelFontSize=11, titleFontSize=11, orient="bottom", labelLimit=0)
        .to_dict()
    )
    return spec


def to_svg(spec: dict[str, Any]) -> str:
    """The chart as an SVG element (no XML prolog: it is inlined in the HTML)."""
    _fonts_registered()
    svg: str = vlc.vegalite_to_svg(
        spec, vl_version=VL_VERSION, format_locale="fr-FR", time_format_locale="fr-FR"
    )
    return svg


def _order(rows: list[dict[str, Any]], field: str) -> list[Any]:
    """The values of `field` in their order of first appearance: the colours follow the
    order the report lists its territories in (the EPCI first), whatever is masked."""
    return list(dict.fromkeys(row[field] for row in rows))


def lines(
    rows: list[dict[str, Any]], x: str, y: str, series: str, *, x_title: str, y_title: str
) -> dict[str, Any]:
    """One line per series over `x` (ordinal, in the order given: years, months); nulls
    break the line."""
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:O", title=x_title, sort=_order(rows, x), axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=",.1~f")),
            color=alt.Color(
                f"{series}:N", title=None, scale=alt.Scale(domain=_order(rows, series))
            ),
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return configured(chart)


def grouped_bars(
    rows: list[dict[str, Any]], x: str, y: str, group: str, *, y_title: str, y_format: str = ",.1~f"
) -> dict[str, Any]:
    """Bars of `y` per `x`, one bar per `group` side by side; a null is a missing bar."""
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=None, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset(f"{group}:N", scale=alt.Scale(domain=_order(rows, group))),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=y_format)),
            color=alt.Color(f"{group}:N", title=None, scale=alt.Scale(domain=_order(rows, group))),
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return configured(chart)


def rate_against_target(
    rows: list[dict[str, Any]], *, x_title: str, y_title: str
) -> dict[str, Any]:
    """Observed shares (lines) and their targets (dashed), per year, in %."""
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("annee:O", title=x_title, axis=alt.Axis(labelAngle=0)),
        color=alt.Color("serie:N", title=None, scale=alt.Scale(domain=_order(rows, "serie"))),
    )
    observed = base.mark_line(point=True).encode(
        y=alt.Y("taux:Q", title=y_title, scale=alt.Scale(domain=[0, 100]))
    )
    target = base.mark_line(strokeDash=[6, 4]).encode(y="objectif:Q")
    return configured(alt.layer(observed, target).properties(width=WIDTH, height=HEIGHT))


def bars(rows: list[dict[str, Any]], label: str, x: str, *, x_title: str) -> dict[str, Any]:
    """Horizontal bars of `x`, one per `label` in the order given (the first one, the
    reference, in its own colour); a null is a missing bar. Horizontal: quarter names are
    long."""
    order = _order(rows, label)
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            y=alt.Y(f"{label}:N", title=None, sort=order, axis=alt.Axis(labelLimit=260)),
            x=alt.X(f"{x}:Q", title=x_title, axis=alt.Axis(format=",.1~f")),
            color=alt.condition(
                alt.datum[label] == order[0], alt.value("#e45756"), alt.value("#4c78a8")
            ),
        )
        .properties(width=WIDTH - 120, height=max(40, 22 * len(order)))
    )
    return configured(chart)
