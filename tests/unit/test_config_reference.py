"""The README's config reference is the config model's own table (``reference_table()``).

The README carries the table between ``<!-- CONFIG-REFERENCE-BEGIN -->`` and
``<!-- CONFIG-REFERENCE-END -->``; regenerate it with
``python -c "from mobileha.config import reference_table; print(reference_table())"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mobileha import config

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- CONFIG-REFERENCE-BEGIN -->", "<!-- CONFIG-REFERENCE-END -->"


def readme_table() -> str | None:
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    if BEGIN not in text or END not in text:
        return None
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()


def test_readme_config_reference_matches_the_model() -> None:
    table = readme_table()
    if table is None:
        pytest.skip(f"README.md has no {BEGIN} ... {END} section yet")
    assert table == config.reference_table(), "regenerate the README table (see module doc)"


def test_every_schema_key_has_a_row_and_meaning() -> None:
    rows = config.reference_table().splitlines()[2:]
    assert len(rows) == len(config.reference_keys()) == len(set(config.reference_keys()))
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), row
