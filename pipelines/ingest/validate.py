"""Typing and row validation of a delivery, vectorised in polars.

Every rule produces, per row, a rule code and a message naming the column, the value and
what was expected, in words a partner's data manager understands. Rows breaking any rule
go to quarantine with their line number; the rest are typed and returned for loading. Only
a file that cannot be interpreted at all (missing columns) is rejected whole.

Values are read the way partners' tools write them (docs/deliveries.md):
- numbers: decimal comma or point; thousands grouped by a space, a no-break space (U+00A0,
  French Excel) or a narrow no-break space (U+202F, French locale since Windows 10), or by
  points when the decimal mark is a comma (`1.250,50`); an exponent (`1e-05`). Anything else
  (`1,250.50`, `12,50 €`) is `type_invalide`, never guessed.
- dates: `YYYY-MM-DD` or `DD/MM/YYYY`, optionally followed by a time of day as information
  systems and XLSX date cells give it (`15/03/2025 14:32`, `2025-03-15T14:32:00`,
  `2025-03-15 14:32:00.000`); the date is kept, the time dropped. A time zone is not accepted.
- commune codes: an all-digit 4-character value in a commune-pattern column (see
  `Column.zero_pad_width`) is a code that a spreadsheet turned into a number and that lost its
  leading zero (`6088` for `06088`, départements 01 to 09): a commune code is always 5
  characters, so it gets its zero back. This is done in one place (`_cleaned`) for every such
  column, and never silently: `Validated.notes` says, per column, how many values were padded.
- values meaning "none" for a column (`Column.none_values`, e.g. INSEE's EPCI `ZZZZZZZZZ` for
  a commune outside any EPCI) are loaded as NULL.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from pipelines.ingest.pseudonymise import pseudonymise_series
from pipelines.ingest.reader import LINE_COLUMN, RawFrame, RejectedFile
from pipelines.ingest.specs import Column, DeliveryKind

_DECIMAL_SPACES = "[\u00a0\u202f ]"
# Plain or space-grouped digits with an optional decimal part and exponent; or point-grouped
# digits with a decimal comma.
_NUMBER_FORMS = (
    r"^[+-]?(?:\d+|\d{1,3}(?:[\u00a0\u202f ]\d{3})+)(?:[.,]\d+)?(?:[eE][+-]?\d+)?$",
    r"^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$",
)
_TIME_OF_DAY = r"(?:[T ](?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?)?"
_ISO_DATE = rf"^(\d{{4}}-\d{{2}}-\d{{2}}){_TIME_OF_DAY}$"
_FRENCH_DATE = rf"^(\d{{2}}/\d{{2}}/\d{{4}}){_TIME_OF_DAY}$"

# Internal columns of a batch: which delivery a row came from, and its file's month.
_DELIVERY = "__livraison"
# Rows judged at once when rows are independent (see validate_many).
SLICE_ROWS = 500_000
_FIRST, _LAST, _PERIOD = "__premier_jour", "__dernier_jour", "__periode"


@dataclass
class Validated:
    loaded: pl.DataFrame  # typed contract columns (targets) + `ligne`
    quarantine: pl.DataFrame  # ligne, regle, motif, contenu
    ignored_columns: list[str]
    # What was repaired rather than quarantined (padded commune codes), one sentence each.
    notes: list[str] = field(default_factory=list)
    # Loaded rows that a delivery-level expectation still weighs, one rule code per row (an
    # incident citing a residence missing from the applicable stock: loaded, judged by dbt
    # against whatever stock applies at each build, never quarantined for the order of arrival).
    flagged: list[str] = field(default_factory=list)

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


def _short_code(column: Column) -> str:
    """Regex of an all-digit value one character short of the column's code width."""
    return rf"^\d{{{column.zero_pad_width - 1}}}$"


def _cleaned(column: Column) -> pl.Expr:
    text = pl.col(column.name.lower()).str.strip_chars()
    text = pl.when(text.is_in(["", "NA"])).then(None).otherwise(text)
    if column.zero_pad_width:
        text = (
            pl.when(text.str.contains(_short_code(column))).then(pl.lit("0") + text).otherwise(text)
        )
    return text


def _padding_notes(frame: pl.DataFrame, columns: list[Column], count: int) -> list[list[str]]:
    """Per delivery (index `__livraison`), one sentence per column whose codes were padded."""
    notes: list[list[str]] = [[] for _ in range(count)]
    padded = [c for c in columns if c.zero_pad_width]
    if not padded or frame.height == 0:
        return notes
    counts = (
        frame.group_by(_DELIVERY)
        .agg(
            pl.col(c.name.lower())
            .str.strip_chars()
            .str.contains(_short_code(c))
            .sum()
            .alias(c.name)
            for c in padded
        )
        .iter_rows(named=True)
    )
    for row in counts:
        notes[row[_DELIVERY]] = [
            f"{c.name}: {row[c.name]} code(s) à {c.zero_pad_width - 1} chiffres complété(s) "
            f"d'un zéro initial (code commune saisi comme un nombre, ex. 6088 -> 06088)"
            for c in padded
            if row[c.name]
        ]
    return notes


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
    frame = frame.with_columns(_cleaned(c).alias(f"__t_{c.name.lower()}") for c in columns)
    derived = []
    for c in columns:
        name = c.name.lower()
        if c.type in ("int", "decimal"):
            derived.append(_number(_clean(name)).alias(f"__n_{name}"))
        elif c.type == "date":
            derived.append(_date(_clean(name)).alias(f"__d_{name}"))
    return frame.with_columns(derived) if derived else frame


def _number(text: pl.Expr) -> pl.Expr:
    """Decimal comma or point, spaces as thousands separators ('1 234,50'); NULL otherwise."""
    valid = pl.any_horizontal(text.str.contains(form) for form in _NUMBER_FORMS)
    compact = text.str.replace_all(_DECIMAL_SPACES, "")
    with_comma = compact.str.contains(",", literal=True)
    normalised = (
        pl.when(with_comma)
        .then(compact.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .otherwise(compact)
    )
    return pl.when(valid).then(normalised.cast(pl.Float64, strict=False))


def _date(text: pl.Expr) -> pl.Expr:
    """ISO or French day-first dates, with or without a time of day (which is dropped)."""
    return pl.coalesce(
        text.str.extract(_ISO_DATE, 1).str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        text.str.extract(_FRENCH_DATE, 1).str.strptime(pl.Date, "%d/%m/%Y", strict=False),
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
        given = text.is_not_null()
        value = text
        if column.none_values:
            none = text.is_in(list(column.none_values))
            given = given & ~none
            value = pl.when(none).then(None).otherwise(text)
        if column.pattern:
            rules.append(
                Rule(
                    "format_invalide",
                    given & ~text.str.contains(column.pattern),
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
                shown("n'est pas une date (AAAA-MM-JJ ou JJ/MM/AAAA, heure facultative)"),
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
    (validated,) = validate_many(
        [(raw, period)], kind, key=key, columns=columns, extra_rules=extra_rules
    )
    return validated


def validate_many(
    deliveries: Sequence[tuple[RawFrame, str | None]],
    kind: DeliveryKind,
    *,
    key: bytes,
    columns: tuple[Column, ...] | None = None,
    extra_rules: Iterable[Rule] = (),
) -> list[Validated]:
    """`validate` for many deliveries of one kind (each with its period) in one polars plan.

    Nationally a refresh reads 62,000 files of a few hundred rows each: validated one at a
    time, the fixed cost of a plan (about twenty collects) was most of the ingestion. The
    deliveries are stacked with their index (`__livraison`) and their month's bounds as
    columns, so that every rule is the one `validate` applies to a single file: duplicates
    are found within a delivery (the window includes the index), dates against the
    delivery's own month, padding notes counted per delivery. Results are split back in
    the given order. A missing contract column rejects the whole call (`RejectedFile`):
    callers check each file's columns first (`check_columns`) to reject only that file."""
    columns = columns or kind.columns
    extra_rules = list(extra_rules)  # read once per slice
    if not deliveries:
        return []
    ignored = [check_columns(raw, columns) for raw, _ in deliveries]
    kept = [c for c in columns if not c.drop]
    by_period = bool(kind.period_date and kind.period == "month")
    names = [c.name.lower() for c in columns]
    parts = []
    for index, (raw, period) in enumerate(deliveries):
        extra = [pl.lit(index, pl.Int64).alias(_DELIVERY)]
        if by_period:
            first, last = month_bounds(period) if period else (None, None)
            extra += [
                pl.lit(first, pl.Date).alias(_FIRST),
                pl.lit(last, pl.Date).alias(_LAST),
                pl.lit(period, pl.String).alias(_PERIOD),
            ]
        parts.append(
            raw.frame.select(
                pl.col(LINE_COLUMN), *(pl.col(n).cast(pl.String) for n in names), *extra
            )
        )
    frame = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
    # Personal identifiers are hashed before anything else sees them, quarantine included.
    pseudonymised = [c for c in columns if c.pseudonymise]
    if pseudonymised:
        frame = frame.with_columns(
            pseudonymise_series(frame.get_column(c.name.lower()).str.strip_chars(), key)
            for c in pseudonymised
        )
    notes = _padding_notes(frame, kept, len(deliveries))
    # Without a key unique within a delivery, every rule reads its own row only: a large
    # frame (a national SSMSI file, 2.9 M rows) is judged in slices, the same rows and
    # reasons in the same order, with a slice's parsing columns in memory instead of the
    # whole file's (its ingestion peaked at 2.0 GB for a 260 MB frame of text).
    if kind.unique_within_delivery or frame.height <= SLICE_ROWS:
        loaded, quarantine = _judged(frame, kind, kept, by_period, extra_rules)
    else:
        judged = [
            _judged(frame.slice(offset, SLICE_ROWS), kind, kept, by_period, extra_rules)
            for offset in range(0, frame.height, SLICE_ROWS)
        ]
        loaded = pl.concat([part for part, _ in judged], how="vertical")
        quarantine = pl.concat([part for _, part in judged], how="vertical")
        del judged
    loaded_parts = _split(loaded, len(deliveries))
    quarantine_parts = _split(quarantine, len(deliveries))
    return [
        Validated(loaded_parts[i], quarantine_parts[i], ignored[i], notes[i])
        for i in range(len(deliveries))
    ]


def _judged(
    frame: pl.DataFrame,
    kind: DeliveryKind,
    kept: list[Column],
    by_period: bool,
    extra_rules: Iterable[Rule],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of `frame` to load, typed, and those to quarantine, with their reasons."""
    frame = _prepare(frame, kept)
    typed: list[pl.Expr] = []
    rules: list[Rule] = []
    for column in kept:
        value, column_rules = _typed(column)
        typed.append(value)
        rules.extend(column_rules)
    if by_period:
        column = next(c for c in kept if c.column == kind.period_date)
        when = _day(column.name.lower())
        rules.append(
            Rule(
                "date_hors_periode",
                when.is_not_null() & ((when < pl.col(_FIRST)) | (when > pl.col(_LAST))),
                pl.format(
                    f"{column.name}: '{{}}' est hors du mois du fichier ({{}})",
                    _clean(column.name.lower()),
                    pl.col(_PERIOD),
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
            pl.col(LINE_COLUMN)
            .filter(~pl.col("__failed"))
            .max()
            .over([pl.col(_DELIVERY), *(_clean(k) for k in keys)])
        )
        checked = checked.with_columns(
            (~pl.col("__failed") & (pl.col(LINE_COLUMN) != last_line)).alias("__repete"),
            last_line.alias("__derniere_ligne"),
        )
    else:
        checked = checked.with_columns(pl.lit(False).alias("__repete"))
    rejected = pl.col("__failed") | pl.col("__repete")

    loaded = checked.filter(~rejected).select(
        pl.col(_DELIVERY), pl.col(LINE_COLUMN).alias("ligne"), *typed
    )
    # Messages are built for the quarantined rows only: formatting every rule's message for
    # every row was most of the cost of validating a large stock file.
    # Rows are gathered by index, not filtered: polars 2.1 panics ("i < self.len()") formatting
    # long strings over some filtered string-view columns.
    bad = checked[checked.select(pl.arg_where(rejected)).to_series()]
    quarantine_schema = {
        _DELIVERY: pl.Int64,
        "ligne": pl.Int64,
        "regle": pl.String,
        "motif": pl.String,
        "contenu": pl.String,
    }
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
            unique = ", ".join(kind.unique_within_delivery)
            repeated_code = pl.lit("doublon_dans_fichier")
            repeated_message = pl.format(
                f"{unique} répété: la ligne {{}} le remplace", pl.col("__derniere_ligne")
            )
        else:
            repeated_code = repeated_message = pl.lit(None, pl.String)
        contenu = pl.struct(
            [_clean(c.name.lower()).alias(c.name) for c in kept]
        ).struct.json_encode()
        quarantine = bad.select(
            pl.col(_DELIVERY),
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
        ).cast(quarantine_schema)  # type: ignore[arg-type]
    else:
        quarantine = pl.DataFrame(schema=quarantine_schema)
    return loaded, quarantine


def _split(frame: pl.DataFrame, count: int) -> list[pl.DataFrame]:
    """One frame per delivery index (an empty one where a delivery has no row), in order."""
    if count == 1:
        return [frame.drop(_DELIVERY)]
    groups = frame.partition_by(_DELIVERY, as_dict=True, include_key=False, maintain_order=True)
    empty = frame.clear().drop(_DELIVERY)
    return [groups.get((i,), empty) for i in range(count)]
