"""Actions returned by the sans-IO state machines; the adapters in ``mobileha.node`` run them.

A core entry point takes an input (datagram or event) and ``now`` (float seconds on a
monotonic clock) and returns a list of actions. Core modules may define further action
classes for their own needs; these are the shared ones of DESIGN §2.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobileha.core.binding import Binding

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``payload`` as one UDP datagram to ``dst``.

    ``src`` asks for a specific source address/port (e.g. the HA replies from the address
    the request was sent to, P§1.1); ``None`` means the adapter's default socket.
    """

    dst: Addr
    payload: bytes
    src: Addr | None = None


@dataclass(frozen=True, slots=True)
class InstallBinding:
    """Install (or update) the forwarding state of a binding in the data plane."""

    binding: Binding


@dataclass(frozen=True, slots=True)
class RemoveBinding:
    """Remove the forwarding state of a binding from the data plane."""

    binding: Binding


@dataclass(frozen=True, slots=True)
class ClaimVip:
    """Take ownership of a virtual IP (add it to the interface, send gratuitous ARPs)."""

    addr: str


@dataclass(frozen=True, slots=True)
class ReleaseVip:
    """Give up a virtual IP."""

    addr: str


__all__ = ["Addr", "ClaimVip", "InstallBinding", "ReleaseVip", "RemoveBinding", "Send"]
