"""``mobileha clear binding|visitor HOA | --nai NAI | --all``: IOS ``clear ip mobile
binding`` and ``clear ip mobile visitor``.

``binding`` sends ``POST /api/clear/binding`` to a home agent's management API (the Active
deletes the bindings; the standby follows through binding sync, the foreign agents through
registration revocation where it was negotiated); ``visitor`` sends ``POST
/api/clear/visitor`` to a foreign agent's (the FA removes the visitors and revokes them at
their home agents where revocation was negotiated). Prints how many were removed.

The API URL and the token are found as for ``mobileha show``: ``--api``, else the
``management.listen`` of ``--config``; the token from ``--token``, ``--token-file``,
``MOBILEHA_TOKEN`` or the config's ``management.token``. A state-changing request always
needs the token (the API refuses it when none is configured).
"""

from __future__ import annotations

import argparse
import sys

from mobileha.mgmt.show import ApiError, api_from_args, post_action


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="mobileha clear", description="operator commands (IOS clear ip mobile ...)"
    )
    ap.add_argument("what", choices=["binding", "visitor"])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("home", nargs="?", help="home address of the bindings/visitors to clear")
    which.add_argument("--nai", help="clear the bindings/visitor of this NAI")
    which.add_argument("--all", action="store_true", help="clear every binding/visitor")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--api", help="management API URL")
    where.add_argument("--config", help="take the API address (and token) from this config")
    tok = ap.add_mutually_exclusive_group()
    tok.add_argument("--token", help="bearer token of the API (default: $MOBILEHA_TOKEN)")
    tok.add_argument("--token-file", help="file whose first line is the token")
    args = ap.parse_args(argv)
    query = {"all": "1"} if args.all else {"nai": args.nai} if args.nai else {"home": args.home}
    try:
        res = post_action(api_from_args(args), f"clear/{args.what}", query)
    except ApiError as e:
        print(f"mobileha clear: {e}", file=sys.stderr)
        return 1
    print(f"{res.get('cleared', 0)} {args.what}(s) cleared")
    return 0


__all__ = ["main"]
