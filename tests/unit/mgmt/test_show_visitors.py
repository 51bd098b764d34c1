"""`mobileha show visitors`: the foreign agent's visitor list, IOS `show ip mobile visitor`."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

from mobileha.mgmt.show import show
from mobileha.mgmt.views import page_of

from .test_mgmt_fake import serve


class FakeFa:
    role = "foreign-agent"
    name = "fa-fake"

    def __init__(self, n: int) -> None:
        self.rows = [
            {
                "home_address": f"10.1.0.{i + 1}",
                "nai": f"mn{i}@example.net",
                "mn": f"10.4.0.{i + 1}:434",
                "home_agent": "10.0.0.100",
                "target": "10.0.1.100",
                "care_of": "10.0.2.2",
                "lifetime_granted": 1800,
                "lifetime_remaining": 1700,
                "flags": 0x0A,
                "encap": "gre",
                "gre_key": 0x100 + i,
                "identification": f"C7D5A4E0.{i:08X}",
                "aaa_home_address": None,
            }
            for i in range(n)
        ]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def views(self) -> Mapping[str, Any]:
        return {"visitors": lambda q: page_of(self.rows, q, lambda r: r, total=len(self.rows))}

    def metrics(self) -> Iterable[Any]:
        return []


def test_show_visitors_paged_ios_shape() -> None:
    with serve(FakeFa(130)) as server:  # type: ignore[arg-type]
        out = io.StringIO()
        show("visitors", server.url, out, page_size=50)
    text = out.getvalue()
    assert text.startswith("Mobile Visitor List:\nTotal 130\n10.1.0.1:\n")
    assert text.count("Care-of Addr 10.0.2.2, HA Addr 10.0.0.100") == 130
    assert "    Lifetime granted 00:30:00 (1800), remaining 00:28:20\n" in text
    assert "Flags 0x0A, Identification C7D5A4E0.00000081, Tunnel GRE key 0x181" in text
    assert "Re-registrations to 10.0.1.100 (the real HA behind the HA-SLB)" in text
    assert "    NAI mn129@example.net\n" in text
