"""The CSV French spreadsheet software opens correctly: one dialect for every CSV we write.

Excel in a French locale reads `;` as the separator and `,` as the decimal mark, and takes a
file for UTF-8 only when it starts with a byte-order mark; data.gouv.fr's conventions say the
same. Open data (pipelines.opendata) and `tranquillity sql --csv` write this dialect, so an
analyst's extract and the published files open the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import polars as pl


def write_csv(frame: pl.DataFrame, target: Path | IO[str] | IO[bytes]) -> None:
    """UTF-8 with BOM, `;`, decimal comma, no thousands separator, no scientific notation,
    empty field for NULL, true/false, ISO dates, quotes only when needed."""
    frame.write_csv(
        target,
        include_bom=True,
        separator=";",
        decimal_comma=True,
        float_scientific=False,
        null_value="",
        quote_style="necessary",
        date_format="%Y-%m-%d",
    )
