"""Regenerate migrations/versions/0001_initial_schema.py from the models.

Only while nothing is deployed (the first session): once a database exists anywhere, add a new
revision with `flask --app bot db revision -m ...` instead.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402


def main() -> None:
    """Delete revision 0001 and autogenerate it again against an empty SQLite database."""
    target = ROOT / "migrations" / "versions" / "0001_initial_schema.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        cfg = Config()
        cfg.set_main_option("script_location", str(ROOT / "migrations"))
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{scratch}/empty.db")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
