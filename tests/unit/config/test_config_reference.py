"""The config reference (docs/config.md and the README's key table) is rendered from the
schema and kept identical to it; the schema and the model agree on defaults.

Regenerate both files with ``python -m mobileha.config.reference --write``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mobileha import config
from mobileha.config import model, reference, schema

ROOT = Path(__file__).resolve().parents[3]


def test_docs_config_md_is_the_schema() -> None:
    text = (ROOT / reference.DOC_PATH).read_text(encoding="utf-8")
    assert text == reference.document(), "python -m mobileha.config.reference --write"


def test_readme_config_reference_is_the_schema() -> None:
    block = reference.readme_block((ROOT / reference.README_PATH).read_text(encoding="utf-8"))
    assert block is not None, f"README.md has no {reference.BEGIN} ... {reference.END} block"
    assert block == config.reference_table(), "python -m mobileha.config.reference --write"


def test_reference_check_mode(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(f"# x\n\n{reference.BEGIN}\nold\n{reference.END}\nend\n")
    assert reference.main(["--root", str(tmp_path), "--check"]) == 1
    assert reference.main(["--root", str(tmp_path), "--write"]) == 0
    assert reference.main(["--root", str(tmp_path), "--check"]) == 0
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# x\n\n") and readme.endswith(f"{reference.END}\nend\n")
    assert reference.readme_block(readme) == config.reference_table()


def test_every_schema_key_has_a_row_and_meaning() -> None:
    rows = config.reference_table().splitlines()[2:]
    assert len(rows) == len(config.reference_keys()) == len(set(config.reference_keys()))
    assert [r.split("`")[1] for r in rows] == config.reference_keys()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), row


def test_every_role_lists_its_own_table_as_required() -> None:
    for role, own in schema.ROLE_REQUIRED.items():
        assert f"`[{own}]` (required" in reference.role_tables(role)
    assert "`[[mobile_node]]`" in reference.role_tables("home-agent")
    assert "`[[mobile_node]]`" not in reference.role_tables("mobile-node")


# table of the schema -> the model dataclass whose same-named fields carry its defaults
MODEL_OF = {
    "management": model.ManagementConfig,
    "log": model.LogConfig,
    "home_agent": model.HomeAgentConfig,
    "hsrp": model.HsrpConfig,
    "hsrp.groups[]": model.HsrpGroupConfig,
    "redundancy": model.RedundancyConfig,
    "dataplane": model.DataplaneConfig,
    "dfp": model.DfpConfig,
    "slb": model.SlbConfig,
    "slb.real[]": model.SlbReal,
    "foreign_agent": model.ForeignAgentConfig,
    "mobile_node": model.MobileNodeConfig,
    "aaa": model.AaaConfig,
    "aaa.user[]": model.AaaUser,
}


def test_model_defaults_are_the_schema_defaults() -> None:
    compared = 0
    for table, cls in MODEL_OF.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, spec in schema.SCHEMA[table].items():
            f = fields.get(key)
            if f is None or f.default is dataclasses.MISSING or spec.default_doc is not None:
                continue  # required, nested (SAs), or derived from another key
            assert f.default == spec.default, f"{table}.{key}"
            compared += 1
    assert compared >= 80  # not vacuous
