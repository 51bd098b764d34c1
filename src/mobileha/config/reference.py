"""The config reference documents, rendered from :mod:`mobileha.config.schema`.

``docs/config.md`` is :func:`document` (the tables of each role, the value syntaxes and the
key table); the README carries the key table alone between ``<!-- CONFIG-REFERENCE-BEGIN -->``
and ``<!-- CONFIG-REFERENCE-END -->``. Regenerate both after a schema change::

    python -m mobileha.config.reference --write      # in the repository root

``--check`` exits 1 when either file differs from the schema (a test does the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobileha.config.model import ROLES
from mobileha.config.schema import CHILDREN, ROLE_REQUIRED, ROLE_SECTIONS, SCHEMA, reference_table

DOC_PATH = Path("docs") / "config.md"
README_PATH = Path("README.md")
BEGIN, END = "<!-- CONFIG-REFERENCE-BEGIN -->", "<!-- CONFIG-REFERENCE-END -->"

_INTRO = """\
# Configuration reference

<!-- Generated from src/mobileha/config/schema.py by
     `python -m mobileha.config.reference --write`; a test keeps it identical. -->

One TOML file per node. `mobileha check CONFIG...` validates files without running them:
unknown keys (with a "did you mean"), wrong types, values out of range and keys that
contradict each other are refused, every problem named by its full key path
(`hsrp.hold_ms: must be greater than hsrp.hello_ms`, `slb.real[1].weight: ...`; array
indexes count from 0). `mobileha run` refuses an invalid file the same way.

## Tables of each role

Every role has `[node]` (with `role`), `[management]` and `[log]`. A table that the role
does not use is an error. `[redundancy]` needs `[hsrp]`.
"""

_NAMES = """\
## One name, two meanings

- `[[mobile_node]]` (an array) in a home-agent config lists the mobile nodes that may
  register and their MN-HA security associations; `[mobile_node]` (one table) in a
  mobile-node config is that node's own settings.
- `[[foreign_agent]]` (an array) in a home-agent config lists the FA-HA security
  associations; `[foreign_agent]` (one table) in a foreign-agent config is the FA's own
  settings.

## Values

- *addr*: a dotted-quad IPv4 address; *endpoint*: `"addr:port"`; *prefix*: `"a.b.c.d/len"`.
- *secret*: `"hex:00112233..."` or `"text:..."`.
- *hsrp-auth*: `"text:<up to 8 characters>"` or `"md5:<key>"`.
- Durations end in `_s` (seconds) or `_ms` (milliseconds).
- Defaults are Cisco's where Cisco has one.

## Keys
"""


def _schema_name(role: str, section: str) -> str:
    """A section's schema entry for a role: the array form (``mobile_node[]``) unless the
    section is the role's own table (``[mobile_node]`` of a mobile node)."""
    if f"{section}[]" in SCHEMA and ROLE_REQUIRED[role] != section:
        return f"{section}[]"
    return section


def _toml_header(schema_name: str) -> str:
    if schema_name.endswith("[]"):
        return f"`[[{schema_name[:-2]}]]`"
    return f"`[{schema_name}]`"


def role_tables(role: str) -> str:
    """The tables of ``role`` in schema order, required ones marked, sub-tables named."""
    sections = ROLE_SECTIONS[role]
    names = [n for n in SCHEMA if "." not in n]
    picked = [n for n in names if n.removesuffix("[]") in sections]
    parts = []
    for name in dict.fromkeys(_schema_name(role, n.removesuffix("[]")) for n in picked):
        text = _toml_header(name)
        notes = []
        if name in ("node", ROLE_REQUIRED[role]):
            notes.append("required")
        children = CHILDREN.get(name, {})
        if children:
            notes.append("with " + ", ".join(_toml_header(c) for c in children.values()))
        if notes:
            text += f" ({'; '.join(notes)})"
        parts.append(text)
    return ", ".join(parts)


def document() -> str:
    """The whole text of ``docs/config.md``."""
    rows = ["| role | tables |", "|---|---|"]
    rows += [f"| `{role}` | {role_tables(role)} |" for role in ROLES]
    return "\n".join([_INTRO, *rows, "", _NAMES, reference_table(), ""])


def readme_block(readme: str) -> str | None:
    """The key table the README carries, or None without the markers."""
    if BEGIN not in readme or END not in readme:
        return None
    return readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip()


def with_readme_block(readme: str) -> str:
    """The README with its key table replaced by the schema's."""
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{reference_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m mobileha.config.reference",
        description="render the config reference (docs/config.md, README.md) from the schema",
    )
    ap.add_argument("--root", type=Path, default=Path("."), help="repository root")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite both files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    args = ap.parse_args(argv)
    doc_path, readme_path = args.root / DOC_PATH, args.root / README_PATH
    if not args.write and not args.check:
        print(document(), end="")
        return 0
    readme = readme_path.read_text(encoding="utf-8")
    if readme_block(readme) is None:
        print(f"{readme_path}: no {BEGIN} ... {END} block", file=sys.stderr)
        return 1
    if args.write:
        doc_path.parent.mkdir(parents=True, exist_ok=True)
        doc_path.write_text(document(), encoding="utf-8")
        readme_path.write_text(with_readme_block(readme), encoding="utf-8")
        return 0
    stale = []
    if not doc_path.exists() or doc_path.read_text(encoding="utf-8") != document():
        stale.append(str(doc_path))
    if readme_block(readme) != reference_table():
        stale.append(str(readme_path))
    for path in stale:
        print(f"{path}: differs from the schema (python -m mobileha.config.reference --write)")
    return 1 if stale else 0


__all__ = ["document", "main", "readme_block", "role_tables", "with_readme_block"]

if __name__ == "__main__":
    sys.exit(main())
