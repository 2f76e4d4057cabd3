"""Keyed pseudonymisation of personal identifiers (docs/deliveries.md).

Tenants and applicants are identifiable people, so `id_locataire` and `num_unique_demande`
are replaced at the door by HMAC-SHA256 under a secret key: the same person keeps the same
pseudonym across deliveries (so repeat incidents can be linked), but nobody holding only the
warehouse can reverse it or confirm a guess without the key. A plain hash would not do: SNE
numbers are short enough to enumerate.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import polars as pl

KEY_FILENAME = "pseudonymisation.key"


def load_key(secrets_dir: Path, value: str | None = None) -> bytes:
    """The key given (`TRANQUILLITY_PSEUDO_KEY`, through the warehouse resource), else the key
    file's (created once, mode 0600)."""
    if value:
        return value.encode("utf-8")
    path = secrets_dir / KEY_FILENAME
    if not path.exists():
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: two processes racing to create the key must not end with two keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode("utf-8")


def pseudonym(value: str, key: bytes) -> str:
    """HMAC-SHA256 of the trimmed identifier, hex encoded."""
    return hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonymise_series(values: pl.Series, key: bytes) -> pl.Series:
    """Hash each distinct value once: identifiers repeat a lot, HMAC is the costly part."""
    distinct = values.drop_nulls().unique()
    mapping = {v: pseudonym(v, key) for v in distinct.to_list()}
    return values.replace_strict(mapping, default=None, return_dtype=pl.String)
