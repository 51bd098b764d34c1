"""Subscriber files: the MN-HA SAs of a ``[[mobile_node]]`` entry with ``sa_source = "file"``.

One subscriber per line, fields separated by white space::

    # nai                spi    key                                   [home_address]
    mn1@example.net      1000   hex:00112233445566778899aabbccddeeff
    mn2@example.net      1000   text:secret2                          10.1.0.7

``key`` is written like every secret of the configuration (``hex:`` or ``text:``); blank
lines and ``#`` comments are skipped. Every NAI must match the entry's realm or pattern (a
file cannot grant SAs outside what the configuration names); the algorithm, replay
protection and lifetime come from the entry. Errors name the file and the line.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from pathlib import Path
from typing import NamedTuple

from mobileha.config.model import ConfigError
from mobileha.config.validate import parse_secret


class Subscriber(NamedTuple):
    nai: str
    spi: int
    key: bytes
    home_address: str | None


def matches(pattern: str, nai: str) -> bool:
    """``@realm`` (the realm compared without case) or a glob over the whole NAI."""
    if pattern.startswith("@") and not any(c in pattern for c in "*?["):
        return nai.rpartition("@")[2].lower() == pattern[1:].lower() and "@" in nai
    return fnmatch.fnmatchcase(nai, pattern)


def read_subscriber_file(path: str | Path, pattern: str) -> list[Subscriber]:
    """The subscribers of ``path``; ConfigError with every bad line (file:line: problem)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError([f"{path}: {e.strerror or e}"]) from e
    out: list[Subscriber] = []
    problems: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}:{n}"
        if len(fields) not in (3, 4):
            problems.append(f"{where}: expected 'nai spi key [home_address]'")
            continue
        nai, spi_s, key_s = fields[:3]
        if not matches(pattern, nai):
            problems.append(f"{where}: {nai} does not match {pattern}")
            continue
        if nai in seen:
            problems.append(f"{where}: duplicate {nai}")
            continue
        try:
            spi = int(spi_s, 0)
            if not 256 <= spi <= 0xFFFFFFFF:
                raise ValueError("spi must be 256..4294967295 (RFC 5944 §3.5.1)")
            key = parse_secret(key_s)
            hoa = fields[3] if len(fields) == 4 else None
            if hoa is not None:
                ipaddress.IPv4Address(hoa)
        except ValueError as e:
            problems.append(f"{where}: {e}")
            continue
        seen.add(nai)
        out.append(Subscriber(nai, spi, key, hoa))
    if problems:
        raise ConfigError(problems)
    return out


__all__ = ["Subscriber", "matches", "read_subscriber_file"]
