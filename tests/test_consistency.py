"""Lists that must agree across Python and dbt stay in agreement."""

from __future__ import annotations

import csv

from pipelines.dbt_project import DBT_PROJECT_DIR
from pipelines.ingest.specs import CATEGORIES


def test_dbt_nomenclature_seed_matches_ingestion_rules() -> None:
    with (DBT_PROJECT_DIR / "seeds" / "nomenclature_incidents.csv").open(
        encoding="utf-8"
    ) as handle:
        seeded = [row["categorie"] for row in csv.DictReader(handle)]
    assert sorted(seeded) == sorted(CATEGORIES)
