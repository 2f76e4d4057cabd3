"""Typing and row validation of a delivery, vectorised in polars.

Every rule produces, per row, a rule code and a message naming the column, the value and
what was expected, in words a partner's data manager understands. Rows breaking any rule
go to quarantine with their line number; the rest are typed and returned for loading. Only
a file that cannot be interpreted at all (missing columns) is rejected whole.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl

from pipelines.ingest.pseudonymise import pseudonymise_series
from pipelines.ingest.reader import LINE_COLUMN, RawFrame, RejectedFile
from pipelines.ingest.specs import Column, DeliveryKind

_DECIMAL_SPACES = "[\u00a0\u202f ]"


@dataclass
class Validated:
    loaded: pl.DataFrame  # typed contract columns (targets) + `ligne`
    quarantine: pl.DataFrame  # ligne, regle, motif, contenu
    ignored_columns: list[str]

    @property
    def rows_read(self) -> int:
        return self.loaded.height + self.quarantine.height


@dataclass(frozen=True)
class Rule:
    """A failing condition (True = the row breaks the rule) with its code and message."""

    code: str
    failed: pl.Expr
    message: pl.Expr


def check_columns(raw: RawFrame, columns: Iterable[Column]) -> list[str]:
    """Reject the whole file when a contract column is missing; return ignored extras."""
    expected = [c.name.lower() for c in columns]
    missing = [c for c in columns if c.name.lower() not in raw.header]
    if missing:
        names = ", ".join(c.name for c in missing)
        raise RejectedFile(
            f"colonnes manquantes: {names} (attendues: {', '.join(c.name for c in columns)} ; "
            f"trouvées: {', '.join(raw.header)})"
        )
    return [h for h in raw.header if h not in expected]


def _cleaned(name: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    return pl.when(text.is_in(["", "NA"])).then(None).otherwise(text)


# Each column's cleaned text, number and date are computed once into these helper columns:
# rules refer to them, so polars does not re-evaluate a parsing chain in every rule.
def _clean(name: str) -> pl.Expr:
    return pl.col(f"__t_{name}")


def _num(name: str) -> pl.Expr:
    return pl.col(f"__n_{name}")


def _day(name: str) -> pl.Expr:
    return pl.col(f"__d_{name}")


def _prepare(frame: pl.DataFrame, columns: Iterable[Column]) -> pl.DataFrame:
    columns = list(columns)
    frame = frame.with_columns(
        _cleaned(c.name.lower()).alias(f"__t_{c.name.lower()}") for c in columns
    )
    derived = []
    for c in columns:
        name = c.name.lower()
        if c.type in ("int", "decimal"):
            derived.append(_number(_clean(name)).alias(f"__n_{name}"))
        elif c.type == "date":
            derived.append(_date(_clean(name)).alias(f"__d_{name}"))
    return frame.with_columns(derived) if derived else frame


def _number(text: pl.Expr) -> pl.Expr:
    """Decimal comma or point, spaces as thousands separators ('1 234,50')."""
    compact = text.str.replace_all(_DECIMAL_SPACES, "")
    with_comma = compact.str.contains(",", literal=True)
    normalised = (
        pl.when(with_comma)
        .then(compact.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .otherwise(compact)
    )
    return normalised.cast(pl.Float64, strict=False)


def _date(text: pl.Expr) -> pl.Expr:
    """ISO or French day-first dates; XLSX cells may carry a midnight time part."""
    day = text.str.slice(0, 10)
    return pl.coalesce(
        day.str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        day.str.strptime(pl.Date, "%d/%m/%Y", strict=False),
    )


def _typed(column: Column) -> tuple[pl.Expr, list[Rule]]:
    """Typed value expression and the rules of one column."""
    name = column.name.lower()
    text = _clean(name)

    def shown(sentence: str) -> pl.Expr:
        """`<column>: '<value>' <sentence>` in one format call (nested pl.format calls panic
        in polars 2.1 on some filtered frames)."""
        escaped = sentence.replace("{", "{{").replace("}", "}}")
        return pl.format(f"{column.name}: '{{}}' {escaped}", text)

    rules: list[Rule] = []
    if column.required:
        rules.append(
            Rule(
                "valeur_manquante",
                text.is_null(),
                pl.lit(f"{column.name}: valeur obligatoire manquante"),
            )
        )
    value: pl.Expr
    if column.type == "text":
        value = text
        if column.pattern:
            rules.append(
                Rule(
                    "format_invalide",
                    text.is_not_null() & ~text.str.contains(column.pattern),
                    shown(f"n'est pas un {column.pattern_label} valide"),
                )
            )
    elif column.type in ("int", "decimal"):
        number = _num(name)
        if column.type == "int":
            value = number.cast(pl.Int64, strict=False)
            bad = text.is_not_null() & (number.is_null() | (number != number.floor()))
            label = "un nombre entier"
        else:
            value = number
            bad = text.is_not_null() & (number.is_null() | number.is_nan() | number.is_infinite())
            label = "un nombre"
        rules.append(Rule("type_invalide", bad, shown(f"n'est pas {label}")))
        if column.minimum is not None or column.maximum is not None:
            low = float("-inf") if column.minimum is None else column.minimum
            high = float("inf") if column.maximum is None else column.maximum
            bounds = f"{_fmt(column.minimum)}..{_fmt(column.maximum)}"
            rules.append(
                Rule(
                    "hors_bornes",
                    ~bad & number.is_not_null() & ((number < low) | (number > high)),
                    shown(f"est hors de l'intervalle {bounds}"),
                )
            )
    elif column.type == "date":
        value = _day(name)
        rules.append(
            Rule(
                "date_invalide",
                text.is_not_null() & value.is_null(),
                shown("n'est pas une date (AAAA-MM-JJ ou JJ/MM/AAAA)"),
            )
        )
    elif column.type == "enum":
        canonical = {a.lower(): a for a in column.allowed}
        value = text.str.to_lowercase().replace_strict(
            canonical, default=None, return_dtype=pl.String
        )
        rules.append(
            Rule(
                "valeur_non_admise",
                text.is_not_null() & value.is_null(),
                shown(f"n'est pas une valeur admise ({', '.join(column.allowed)})"),
            )
        )
    elif column.type == "oui_non":
        value = text.str.to_lowercase().replace_strict(
            {"oui": True, "non": False}, default=None, return_dtype=pl.Boolean
        )
        rules.append(
            Rule(
                "valeur_non_admise",
                text.is_not_null() & value.is_null(),
                shown("n'est pas 'oui' ou 'non'"),
            )
        )
    else:  # pragma: no cover - specs are static
        raise ValueError(column.type)
    return value.alias(column.column), rules


def _fmt(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def month_bounds(period: str) -> tuple[date, date]:
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def validate(
    raw: RawFrame,
    kind: DeliveryKind,
    *,
    period: str | None,
    key: bytes,
    columns: tuple[Column, ...] | None = None,
    extra_rules: Iterable[Rule] = (),
) -> Validated:
    """Split a delivery into typed rows to load and quarantined rows with reasons."""
    columns = columns or kind.columns
    ignored = check_columns(raw, columns)
    frame = raw.frame
    # Personal identifiers are hashed before anything else sees them, quarantine included.
    pseudonymised = [c for c in columns if c.pseudonymise]
    if pseudonymised:
        frame = frame.with_columns(
            pseudonymise_series(frame.get_column(c.name.lower()).str.strip_chars(), key)
            for c in pseudonymised
        )
    kept = [c for c in columns if not c.drop]
    frame = _prepare(frame, kept)
    typed: list[pl.Expr] = []
    rules: list[Rule] = []
    for column in kept:
        value, column_rules = _typed(column)
        typed.append(value)
        rules.extend(column_rules)
    if kind.period_date and period and kind.period == "month":
        first, last = month_bounds(period)
        column = next(c for c in kept if c.column == kind.period_date)
        when = _day(column.name.lower())
        rules.append(
            Rule(
                "date_hors_periode",
                when.is_not_null() & ((when < first) | (when > last)),
                pl.format(
                    f"{column.name}: '{{}}' est hors du mois du fichier ({period})",
                    _clean(column.name.lower()),
                ),
            )
        )
    for later, earlier in kind.ordered_dates:
        later_date, earlier_date = _day(later), _day(earlier)
        rules.append(
            Rule(
                "dates_incoherentes",
                later_date.is_not_null() & earlier_date.is_not_null() & (later_date < earlier_date),
                pl.format(
                    f"{later}: '{{}}' est antérieure à {earlier} '{{}}'",
                    _clean(later),
                    _clean(earlier),
                ),
            )
        )
    rules.extend(extra_rules)

    failed_any = (
        pl.any_horizontal([r.failed.fill_null(False) for r in rules]) if rules else pl.lit(False)
    )
    checked = frame.with_columns(failed_any.alias("__failed"))
    if kind.unique_within_delivery:
        keys = [k.lower() for k in kind.unique_within_delivery]
        last_line = (
            pl.col(LINE_COLUMN).filter(~pl.col("__failed")).max().over([_clean(k) for k in keys])
        )
        checked = checked.with_columns(
            (~pl.col("__failed") & (pl.col(LINE_COLUMN) != last_line)).alias("__repete"),
            last_line.alias("__derniere_ligne"),
        )
    else:
        checked = checked.with_columns(pl.lit(False).alias("__repete"))
    rejected = pl.col("__failed") | pl.col("__repete")

    loaded = checked.filter(~rejected).select(pl.col(LINE_COLUMN).alias("ligne"), *typed)
    # Messages are built for the quarantined rows only: formatting every rule's message for
    # every row was most of the cost of validating a large stock file.
    # Rows are gathered by index, not filtered: polars 2.1 panics ("i < self.len()") formatting
    # long strings over some filtered string-view columns.
    bad = checked[checked.select(pl.arg_where(rejected)).to_series()]
    if bad.height:
        rule_code = pl.coalesce(
            [pl.when(r.failed.fill_null(False)).then(pl.lit(r.code)) for r in rules]
        )
        message = pl.concat_str(
            [pl.when(r.failed.fill_null(False)).then(r.message) for r in rules],
            separator=" ; ",
            ignore_nulls=True,
        )
        if kind.unique_within_delivery:
            names = ", ".join(kind.unique_within_delivery)
            repeated_code = pl.lit("doublon_dans_fichier")
            repeated_message = pl.format(
                f"{names} répété: la ligne {{}} le remplace", pl.col("__derniere_ligne")
            )
        else:
            repeated_code = repeated_message = pl.lit(None, pl.String)
        contenu = pl.struct(
            [_clean(c.name.lower()).alias(c.name) for c in kept]
        ).struct.json_encode()
        quarantine = bad.select(
            pl.col(LINE_COLUMN).alias("ligne"),
            pl.when(pl.col("__failed"))
            .then(rule_code if rules else None)
            .otherwise(repeated_code)
            .alias("regle"),
            pl.when(pl.col("__failed"))
            .then(message if rules else None)
            .otherwise(repeated_message)
            .alias("motif"),
            contenu.alias("contenu"),
        )
    else:
        quarantine = pl.DataFrame(
            schema={"ligne": pl.Int64, "regle": pl.String, "motif": pl.String, "contenu": pl.String}
        )
    return Validated(loaded, quarantine, ignored)
