"""Statistical confidentiality of the open-data tables (docs/open-data.md)."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from pipelines.opendata import (
    SEUIL_ATTRIBUTIONS,
    SEUIL_INCIDENTS,
    TOTAL,
    protect_group,
    suppress_long,
)


def recoverable_cells(
    frame: pl.DataFrame, keys: list[str], category: str, count: str
) -> list[tuple]:
    """What an attacker gets from a long table: masked cells pinned down by the published total.

    Knows: every masked cell is >= 1; the `total` row is the sum of the category rows.
    """
    found = []
    for key, group in frame.group_by(keys, maintain_order=True):
        totals = group.filter(pl.col(category) == TOTAL)
        if not totals.height or totals.get_column(count)[0] is None:
            continue
        cells = group.filter(pl.col(category) != TOTAL)
        masked = cells.filter(pl.col(count).is_null())
        if not masked.height:
            continue
        remainder = totals.get_column(count)[0] - cells.get_column(count).drop_nulls().sum()
        if masked.height == 1 or remainder == masked.height:
            found.append((key, masked.get_column(category).to_list(), remainder))
    return found


def assert_no_small_counts(frame: pl.DataFrame, count: str, seuil: int) -> None:
    small = frame.filter(pl.col(count).is_between(1, seuil - 1))
    assert small.height == 0, small


@pytest.mark.parametrize(
    ("values", "masked", "total", "expected_masked", "expected_total_masked"),
    [
        ([3, 20, 40], [True, False, False], 63, [True, True, False], False),  # smallest other cell
        (
            [3, 0, 0],
            [True, False, False],
            3,
            [True, False, False],
            True,
        ),  # only zeros: mask the total
        ([1, 1, 30], [True, True, False], 32, [True, True, True], False),  # 1 + 1 = 2 masked cells
        ([2, 3, 30], [True, True, False], 35, [True, True, False], False),  # already safe
        ([12, 30], [False, False], 42, [False, False], False),  # nothing masked
    ],
)
def test_protect_group(values, masked, total, expected_masked, expected_total_masked) -> None:
    assert protect_group(values, masked, total, False) == (expected_masked, expected_total_masked)


def test_random_tables_leak_nothing() -> None:
    """Many random groups: after suppression no small count is published and no masked cell
    is recoverable from its group's total."""
    rng = random.Random(20261126)
    rows = []
    for territory in range(400):
        cells = [rng.choice([0, 0, 1, 2, 3, 4, 5, 8, 13, 40]) for _ in range(rng.randint(1, 8))]
        for i, value in enumerate(cells):
            rows.append((f"T{territory}", f"c{i}", value))
        rows.append((f"T{territory}", TOTAL, sum(cells)))
    frame = pl.DataFrame(rows, schema=["territoire", "categorie", "n"], orient="row")
    protected = suppress_long(frame, ["territoire"], "categorie", "n", SEUIL_INCIDENTS)
    published = protected.with_columns(
        pl.when(pl.col("secret")).then(None).otherwise(pl.col("n")).alias("n")
    )
    assert protected.height == frame.height
    assert_no_small_counts(published, "n", SEUIL_INCIDENTS)
    assert recoverable_cells(published, ["territoire"], "categorie", "n") == []
    # The attack does find cells when only primary suppression is applied.
    naive = frame.with_columns(
        pl.when(pl.col("n").is_between(1, 4)).then(None).otherwise(pl.col("n")).alias("n")
    )
    assert recoverable_cells(naive, ["territoire"], "categorie", "n")


def check_open_directory(folder: Path) -> None:
    """Every open table of a publication: no small count, nothing recoverable."""
    for niveau in ("commune", "epci", "departement"):
        frame = pl.read_parquet(folder / f"incidents_{niveau}_annee.parquet")
        assert_no_small_counts(frame, "n_incidents", SEUIL_INCIDENTS)
        assert (
            frame.filter(
                pl.col("secret") & pl.col("taux_annualise_pour_1000_logements").is_not_null()
            ).height
            == 0
        )
        assert (
            recoverable_cells(frame, ["code_territoire", "annee"], "categorie", "n_incidents") == []
        )
    events = pl.read_parquet(folder / "evenements_departement_annee.parquet")
    assert_no_small_counts(events, "n_evenements", SEUIL_INCIDENTS)
    mix = pl.read_parquet(folder / "mixite_epci_annee.parquet")
    counts = [
        "n_attributions",
        "n_attributions_hors_qpv",
        "n_q1_hors_qpv",
        "n_attributions_qpv",
        "n_hors_q1_qpv",
        "n_menages_prioritaires",
    ]
    for column in counts:
        assert_no_small_counts(mix, column, SEUIL_ATTRIBUTIONS)
    # n_attributions = hors QPV + QPV: exactly one masked part under a published total leaks.
    one_part_masked = mix.filter(
        pl.col("n_attributions").is_not_null()
        & (pl.col("n_attributions_hors_qpv").is_null() ^ pl.col("n_attributions_qpv").is_null())
    )
    assert one_part_masked.height == 0
    # A rate, shortfall or compliance flag next to a masked count would give it away.
    for derived, sources in {
        "taux_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "manque_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "conforme_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
    }.items():
        leaks = mix.filter(
            pl.col(derived).is_not_null() & pl.any_horizontal(pl.col(s).is_null() for s in sources)
        )
        assert leaks.height == 0, derived
    csv = (folder / "mixite_epci_annee.csv").read_text().splitlines()
    assert csv[0].startswith("code_epci;annee;n_attributions")
