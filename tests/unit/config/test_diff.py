"""config.diff: changed values named by their TOML keys, entries of arrays of tables
compared one by one (or counted when the length changed), secrets not shown, and ``keep``
setting values back."""

from __future__ import annotations

from mobileha.config import loads_config
from mobileha.config.diff import differences, keep

BASE = """
[node]
role = "slb"
[slb]
virtual_address = "10.0.0.100"
mode = "relay"
session_s = 10
[slb.relay_sa]
spi = 700
key = "hex:00112233445566778899aabbccddeeff"
[[slb.real]]
address = "10.0.1.1"
weight = 8
[[slb.real]]
address = "10.0.1.2"
"""


def test_keys_values_and_keep() -> None:
    old = loads_config(BASE)
    new = loads_config(
        BASE.replace("weight = 8", "weight = 3")
        .replace("session_s = 10", "session_s = 20")
        .replace("00112233", "99112233")
        .replace('virtual_address = "10.0.0.100"', 'virtual_address = "10.0.0.101"')
    )
    diffs = differences(old, new)
    assert [str(d) for d in diffs] == [
        "slb.virtual_address: 10.0.0.100 -> 10.0.0.101",
        "slb.real[0].weight: 8 -> 3",
        "slb.session_s: 10 -> 20",
        "slb.relay_sa.key: (secret) -> (secret)",
    ]
    assert diffs[1].table_key == "slb.real.weight"
    kept = keep(new, old, [diffs[0]])
    assert kept.slb is not None and kept.slb.virtual_address == "10.0.0.100"
    assert kept.slb.session_s == 20 and kept.slb.reals[0].weight == 3
    three = loads_config(BASE + '[[slb.real]]\naddress = "10.0.1.3"\n')
    assert [str(d) for d in differences(old, three)] == ["slb.real: 2 entries -> 3 entries"]
    assert differences(old, loads_config(BASE)) == []
