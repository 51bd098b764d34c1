"""Any mutation of a valid config is either accepted or refused with ConfigError problems
that each name a key path; never another exception."""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.config import Config, ConfigError, config_from_dict

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.toml"))
DOCS = [tomllib.loads(p.read_text()) for p in EXAMPLES]

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["dynamic", "10.0.0.1", "hex:00ff", "text:x", "1.2.3.4:5", "10.0.0.0/8"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*prefix, i))
    return out


@settings(max_examples=int(os.environ.get("CONFIG_FUZZ_EXAMPLES", "300")), deadline=None)
@given(
    doc_i=st.integers(0, len(DOCS) - 1),
    picks=st.lists(st.tuples(st.integers(0, 10**6), values, st.booleans()), min_size=1, max_size=4),
)
def test_mutated_configs_fail_only_with_named_keys(
    doc_i: int, picks: list[tuple[int, Any, bool]]
) -> None:
    doc = copy.deepcopy(DOCS[doc_i])
    for idx, value, delete in picks:
        ps = paths(doc)
        if not ps:
            break
        path = ps[idx % len(ps)]
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if delete and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    try:
        cfg = config_from_dict(doc)
    except ConfigError as e:
        assert e.problems
        for p in e.problems:
            key, sep, msg = p.partition(": ")
            assert sep and key and msg, p
            assert " " not in key or '"' in key, p  # odd keys are quoted as TOML does
        return
    assert isinstance(cfg, Config)
