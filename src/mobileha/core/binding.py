"""The mobility binding record shared by the home agent, the data plane and HA-HA sync.

Addresses are dotted-quad strings throughout the API (the data plane converts them once,
when a binding is installed, to whatever its lookup needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Encap(IntEnum):
    """Tunnel encapsulation, numbered by IP protocol (P§3)."""

    IPIP = 4
    GRE = 47
    MINIMAL = 55


# Registration Request flag bits (P§1.2).
FLAG_S = 0x80
FLAG_B = 0x40
FLAG_D = 0x20
FLAG_M = 0x10
FLAG_G = 0x08
FLAG_R = 0x04
FLAG_T = 0x02
FLAG_X = 0x01


@dataclass(slots=True)
class Binding:
    """One mobility binding: a home address bound to one care-of address (P§1.8).

    ``expires`` is a deadline on the caller's monotonic clock (the ``now`` passed to the
    core); ``lifetime`` is the lifetime granted in the reply (0xFFFF = infinite).
    """

    home_addr: str
    care_of: str
    ha_addr: str  # HA address of the reply: the tunnel's outer source (P§1.8)
    lifetime: int
    expires: float
    ident: int  # Identification of the accepted request (replay state, P§1.7)
    flags: int  # the request's flag byte (S B D M G r T x)
    encap: Encap = Encap.IPIP
    gre_key: int | None = None
    nai: str | None = None
    src_addr: str = ""  # IP source of the accepted request (FA/PDSN, or the MN if co-located)
    src_port: int = 434
    # RFC 3543 registration revocation negotiated with that FA, packed by
    # mobileha.core.revocation.negotiated_state (0: not negotiated)
    revocation: int = 0

    @property
    def reverse_tunnel(self) -> bool:
        return bool(self.flags & FLAG_T)

    @property
    def simultaneous(self) -> bool:
        return bool(self.flags & FLAG_S)

    @property
    def key(self) -> tuple[str, str]:
        """A binding is identified by (home address, care-of address)."""
        return (self.home_addr, self.care_of)


__all__ = [
    "FLAG_B",
    "FLAG_D",
    "FLAG_G",
    "FLAG_M",
    "FLAG_R",
    "FLAG_S",
    "FLAG_T",
    "FLAG_X",
    "Binding",
    "Encap",
]
