"""The import direction of the layers (DESIGN §2), checked on the source with ``ast``.

``cli/demo/lab/runner`` > ``mgmt`` > ``node`` > ``core`` > ``wire``; ``dataplane`` and ``aaa``
beside ``core`` (used by ``node``). Every import counts: module level, inside functions and
under ``TYPE_CHECKING``; relative imports are resolved against the importing module.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mobileha

SRC = Path(mobileha.__file__).parent

# The user entry points and the composition root: nothing below them imports them.
ENTRY_POINTS = ("cli", "compose", "demo", "lab", "reload", "runner", "systemd", "tools")

# package (first component under mobileha) -> mobileha packages/modules it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("node", "dataplane", "aaa", "mgmt", "config", *ENTRY_POINTS),
    "wire": ("core", "node", "dataplane", "aaa", "mgmt", "config", *ENTRY_POINTS),
    "node": ("mgmt", "cli", "compose", "demo", "lab", "runner", "tools"),
    "dataplane": ("node", "mgmt", "cli", "compose", "demo", "lab", "runner"),
    "aaa": ("node", "mgmt", "dataplane", "cli", "compose", "demo", "lab", "runner"),
    "mgmt": ("cli", "demo", "lab", "runner"),
}

# Third-party packages that belong to one layer only.
THIRD_PARTY_ONLY_IN = {"prometheus_client": ("mgmt",)}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, wherever it is."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # "from mobileha import mgmt" names a module too
                yield node.lineno, f"{target}.{alias.name}"


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mobileha" or len(parts) < 2:
        return None
    return parts[1]


def _violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        here = _layer(_module_name(path))
        if here is None:
            continue
        banned = FORBIDDEN.get(here, ())
        for line, target in _imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            there = _layer(target)
            if there is not None and there != here and there in banned:
                out.append(f"{where}: {here} imports {target}")
            top = target.split(".")[0]
            allowed = THIRD_PARTY_ONLY_IN.get(top)
            if allowed is not None and here not in allowed:
                out.append(f"{where}: {top} is imported only in {', '.join(allowed)}")
    return out


def test_layers_import_downward_only() -> None:
    assert _violations() == []


def test_core_and_wire_import_only_wire_core_and_the_standard_library() -> None:
    bad = []
    # _slbio: the project's optional C module, a leaf (it imports nothing of mobileha); wire
    # reaches it for the sync record codec, core only through wire
    for pkg, own in (("core", {"core", "wire"}), ("wire", {"wire", "_slbio"})):
        for path in sorted((SRC / pkg).rglob("*.py")):
            for line, target in _imports(path):
                top = target.split(".")[0]
                if top == "mobileha":
                    if _layer(target) not in own:
                        bad.append(f"{path.relative_to(SRC.parent)}:{line}: {target}")
                elif top not in sys.stdlib_module_names and top != "__future__":
                    bad.append(f"{path.relative_to(SRC.parent)}:{line}: {target}")
    assert bad == []


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("node", "from mobileha.mgmt.views import page_of\n", "node imports mobileha.mgmt.views"),
        ("node", "def f():\n    from ..mgmt import metrics\n", "node imports mobileha.mgmt"),
        ("node", "from mobileha import mgmt\n", "node imports mobileha.mgmt"),
        ("dataplane", "import mobileha.lab.netns\n", "dataplane imports mobileha.lab.netns"),
        ("core", "from mobileha.config import Config\n", "core imports mobileha.config"),
        ("node", "import prometheus_client\n", "prometheus_client is imported only in mgmt"),
    ],
    ids=[
        "module-level",
        "in-function-relative",
        "from-package",
        "dataplane-lab",
        "core-config",
        "third-party",
    ],
)
def test_the_checker_sees_every_kind_of_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, source: str, expected: str
) -> None:
    """The rules catch module-level, function-level, relative and ``from pkg import mod``
    imports (a checker that sees none would pass on any tree)."""
    root = tmp_path / "mobileha"
    (root / package).mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / package / "__init__.py").write_text("")
    (root / package / "bad.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "SRC", root)
    found = _violations()
    assert any(expected in v for v in found), found
