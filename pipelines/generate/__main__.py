"""``python -m pipelines.generate [OPTIONS]``: the same command as ``tranquillity generate``.

Why it exists: running the generator as a module is handy while debugging it. It is the
project command itself, so options, defaults and messages have one home (pipelines/cli.py).
"""

from __future__ import annotations

import sys

from pipelines.cli import main

if __name__ == "__main__":
    # Usage and errors name the project command: it is the one documented.
    main(["generate", *sys.argv[1:]], prog_name="tranquillity")
