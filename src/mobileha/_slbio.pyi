"""Types of the optional C module (src/mobileha/_slbio.c)."""

from collections.abc import Callable, Sequence
from typing import Any

def recv_requests(
    fd: int, max_n: int, bufsize: int, /
) -> list[tuple[bytes, tuple[str, int], str | None, int]]: ...
def leading_nai(data: bytes, /) -> str | None: ...
def send_all(fd: int, datagrams: list[bytes], start: int = 0, /) -> int: ...
def ipv4_udp(src: str, sport: int, dst: str, dport: int, payload: bytes, /) -> bytes: ...
def sendto_all(fd: int, items: list[tuple[bytes, tuple[str, int]]], start: int = 0, /) -> int: ...
def send_relay(
    fd: int,
    items: list[tuple[bytes, tuple[str, int], str | None, int]],
    tag_head: bytes,
    start: int = 0,
    /,
) -> int: ...
def send_directed(
    fd: int,
    items: list[tuple[bytes, tuple[str, int], str | None, int]],
    dst: str,
    dport: int,
    start: int = 0,
    /,
) -> int: ...
def sync_pack_one(
    binding: Any,
    now: float,
    rec_flags: int,
    nonce: int | None,
    sa_block: bytes | None,
    revocation: Callable[[int], tuple[int, int]],
    /,
) -> bytes: ...
def sync_pack(
    bindings: list[Any],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
    revocation: Callable[[int], tuple[int, int]],
    /,
) -> list[bytes]: ...
def sync_pack_chunk(
    bindings: list[Any],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
    revocation: Callable[[int], tuple[int, int]],
    limit: int,
    /,
) -> tuple[bytes, int]: ...
def sync_decode(
    data: bytes,
    offset: int,
    count: int,
    factory: Callable[..., Any],
    ha_addr: str,
    now: float,
    encaps: dict[int, Any],
    record_sa: Callable[..., Any],
    decode_error: type[Exception],
    layout: tuple[tuple[Any, ...], tuple[tuple[Any, Any], ...]] | None = None,
    /,
) -> tuple[list[tuple[Any, int, int | None, Any, int | None]], int]: ...
def pool_state(bits: bytearray, base: int, addr: str, /) -> int: ...
def pool_flags(bits: bytearray, base: int, addrs: Sequence[str], flag: int, /) -> list[int]: ...
