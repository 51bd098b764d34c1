"""``mobileha clear binding HOA | --nai NAI | --all``: IOS ``clear ip mobile binding``.

Sends ``POST /api/clear/binding`` to a home agent's management API (the Active deletes the
bindings; the standby follows through binding sync, the foreign agents through
registration revocation where it was negotiated) and prints how many were removed.

The API URL comes from ``--api``, else the ``management.listen`` of ``--config``, else
``MOBILEHA_API``, else ``http://127.0.0.1:8434``. A management API listening beyond
loopback requires a bearer token: ``--token``, else ``MOBILEHA_API_TOKEN``, else the
config's ``management.token``; when one is known it is sent as
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mobileha.mgmt.show import ApiError, _get_json, api_from_args


def post(api: str, command: str, query: dict[str, str], token: str | None = None) -> Any:
    """POST ``/api/<command>?query``; the decoded JSON, or :class:`ApiError`."""
    url = f"{api.rstrip('/')}/api/{command}?{urllib.parse.urlencode(query)}"
    req = urllib.request.Request(url, data=b"", method="POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return _get_json(req, 5.0)


def token_from_args(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    env = os.environ.get("MOBILEHA_API_TOKEN")
    if env:
        return env
    if args.config:
        from mobileha.config import load_config

        token = getattr(load_config(args.config).management, "token", None)
        if isinstance(token, bytes):
            return token.decode()
        return token if isinstance(token, str) else None
    return None


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="mobileha clear", description="operator commands (IOS clear ip mobile ...)"
    )
    ap.add_argument("what", choices=["binding"])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("home", nargs="?", help="home address of the bindings to clear")
    which.add_argument("--nai", help="clear the bindings of this NAI")
    which.add_argument("--all", action="store_true", help="clear every binding")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--api", help="management API URL")
    where.add_argument("--config", help="take the API address (and token) from this config")
    ap.add_argument("--token", help="bearer token of the management API")
    args = ap.parse_args(argv)
    query = {"all": "1"} if args.all else {"nai": args.nai} if args.nai else {"home": args.home}
    try:
        res = post(api_from_args(args), "clear/binding", query, token_from_args(args))
    except ApiError as e:
        print(f"mobileha clear: {e}", file=sys.stderr)
        return 1
    print(f"{res.get('cleared', 0)} binding(s) cleared")
    return 0


__all__ = ["main", "post", "token_from_args"]
