"""A report as one self-contained HTML file, and the same as PDF.

Self-contained means it opens anywhere, offline, years later: the styles, the two fonts
(base64 `@font-face`) and the charts (inline SVG) are inside the file, which makes no request
(a browser test checks it). The same page is printed to PDF by WeasyPrint with the `@page`
rules (A4, page numbers), so the two formats cannot differ.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path

import jinja2

from pipelines.reports.charts import FONTS, to_svg
from pipelines.reports.model import (
    MASKED_LABEL,
    MASKED_MARK,
    MISSING_MARK,
    NUMERIC_KINDS,
    Cell,
    Report,
)

NARROW_NBSP = "\u202f"


def french_number(value: float, decimals: int) -> str:
    """1234.5 -> '1 234,5' (narrow no-break space for thousands, decimal comma)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", NARROW_NBSP).replace(".", ",")


def text(cell: Cell) -> str:
    """A cell as printed: masked 's', not applicable '–', French numbers with their unit."""
    if cell.masked:
        return MASKED_MARK
    value = cell.value
    if value is None:
        return MISSING_MARK
    match cell.kind:
        case "entier":
            return french_number(value, 0)
        case "decimal":
            return french_number(value, 2)
        case "taux":
            return french_number(value, 1)
        case "pct":
            return f"{french_number(value, 0)}{NARROW_NBSP}%"
        case "ratio_pct":
            return f"{french_number(100 * value, 1)}{NARROW_NBSP}%"
        case "booleen":
            return "Oui" if value else "Non"
        case _:
            return str(value)


def css_class(cell: Cell) -> str:
    if cell.masked:
        return "num masque"
    return "num" if cell.kind in NUMERIC_KINDS else ""


@cache
def _font_faces() -> str:
    faces = []
    for file, weight in (("DejaVuSans.ttf", "normal"), ("DejaVuSans-Bold.ttf", "bold")):
        data = base64.b64encode((FONTS / file).read_bytes()).decode("ascii")
        faces.append(
            '@font-face { font-family: "DejaVu Sans"; font-style: normal; '
            f"font-weight: {weight}; src: url(data:font/ttf;base64,{data}) format('truetype'); }}"
        )
    return "\n".join(faces)


CSS = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm;
  @bottom-left { content: string(rapport); font-size: 8pt; color: #555; }
  @bottom-right { content: "Page " counter(page) " / " counter(pages); font-size: 8pt; color: #555; } }
html { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; color: #1e1e1e; line-height: 1.4; }
body { max-width: 190mm; margin: 0 auto; padding: 1em; }
header { border-bottom: 3px solid #000091; margin-bottom: 1em; }
header h1 { font-size: 17pt; margin: 0 0 .2em 0; color: #000091; string-set: rapport content(); }
header p { margin: .1em 0; }
h2 { font-size: 13pt; color: #000091; border-bottom: 1px solid #ccc; margin-top: 1.6em; break-after: avoid; }
nav ol { margin: .3em 0 0 1.2em; padding: 0; }
table { border-collapse: collapse; margin: .6em 0 .2em 0; font-size: 9pt; break-inside: auto; }
caption { text-align: left; font-weight: bold; margin-bottom: .3em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; vertical-align: top; }
th { background: #eef; text-align: left; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.masque { color: #666; font-style: italic; background: #f3f3f3; }
p.note, figcaption { font-size: 8.5pt; color: #444; }
figure { margin: .8em 0; break-inside: avoid; }
figure svg { max-width: 100%; height: auto; }
dl { font-size: 9pt; } dt { font-weight: bold; margin-top: .4em; } dd { margin-left: 1.2em; }
footer { margin-top: 2em; border-top: 1px solid #ccc; font-size: 8pt; color: #555; }
@media print { body { max-width: none; padding: 0; } nav { break-after: page; } }
"""

TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tranquillity">
<title>{{ report.title }} – {{ report.nom_epci }} – {{ report.annee }}</title>
<style>{{ fonts|safe }}{{ css|safe }}</style>
</head>
<body>
<header>
<h1>{{ report.title }}</h1>
<p><strong>{{ report.subtitle }}</strong></p>
<p>{{ report.nom_epci }} (EPCI {{ report.code_epci }}) – année {{ report.annee }}</p>
<p>Publication {{ report.publication_id }} du {{ publiee_le }}</p>
</header>
<nav><strong>Sommaire</strong><ol>
{% for section in report.sections %}<li><a href="#{{ section.id }}">{{ section.title }}</a></li>
{% endfor %}</ol></nav>
<main>
{% for section in report.sections %}
<section id="{{ section.id }}">
<h2>{{ loop.index }}. {{ section.title }}</h2>
{% for paragraph in section.paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}
{% for chart in section.charts %}
<figure id="fig-{{ chart.id }}" class="graphique">{{ svgs[chart.id]|safe }}
<figcaption>{{ chart.title }}{% if chart.note %} – {{ chart.note }}{% endif %}</figcaption></figure>
{% endfor %}
{% for table in section.tables %}
<table>
{% if table.caption %}<caption>{{ table.caption }}</caption>{% endif %}
<thead><tr>{% for header in table.headers %}<th scope="col">{{ header }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in table.rows %}<tr>{% for cell in row %}<td class="{{ css_class(cell) }}"{% if cell.masked %} title="{{ masked_label }}"{% endif %}>{{ text(cell) }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{% if table.note %}<p class="note">{{ table.note }}</p>{% endif %}
{% endfor %}
{% if section.definitions %}<dl>
{% for term, definition in section.definitions %}<dt>{{ term }}</dt><dd>{{ definition }}</dd>
{% endfor %}</dl>{% endif %}
</section>
{% endfor %}
</main>
<footer><p>Produit par tranquillity à partir des données ouvertes de la publication
{{ report.publication_id }} (Licence Ouverte / Open Licence 2.0).</p></footer>
</body>
</html>
"""
)


def _french_time(iso: str) -> str:
    """'2026-11-27T01:17:10Z' -> '27/11/2026 à 01:17 UTC'."""
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]} à {iso[11:16]} UTC"


def render_html(report: Report) -> str:
    svgs = {chart.id: to_svg(chart.spec) for chart in report.charts()}
    return TEMPLATE.render(
        report=report,
        svgs=svgs,
        fonts=_font_faces(),
        css=CSS,
        text=text,
        css_class=css_class,
        masked_label=MASKED_LABEL,
        publiee_le=_french_time(report.publiee_le),
    )


def write_pdf(page: str, target: Path) -> None:
    """Print the HTML page to PDF (WeasyPrint: no browser; the fonts are the page's own)."""
    import weasyprint

    weasyprint.HTML(string=page, base_url=str(target.parent)).write_pdf(target)
