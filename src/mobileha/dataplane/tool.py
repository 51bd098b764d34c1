"""A small driver for a data plane, for tests, benchmarks and manual experiments.

``python -m mobileha.dataplane.tool --role ha [--backend userspace] [--tun mhtun0] ...``

``--backend`` is any backend of ``[dataplane] backend`` (``auto`` too); ``--tun`` names the
TUN device (userspace) or the sink device (ebpf). It prints ``{"ready": true, "backend":
..., "not_taken": {...}}`` once the data plane is up, then reads one JSON command per
line on stdin and answers one JSON line on stdout::

    {"op": "install", "binding": {"home_addr": "10.99.0.5", "care_of": "10.3.0.2",
        "ha_addr": "10.2.0.2", "encap": "gre", "gre_key": 7, "flags": 2, "lifetime": 30}}
    {"op": "remove", "binding": {...}}     {"op": "stats"}     {"op": "routes"}
    {"op": "claim_vip", "addr": "..."}     {"op": "release_vip", "addr": "..."}
    {"op": "quit"}

``lifetime`` (seconds, optional, 0xFFFF = infinite) makes the tool remove the binding when it
expires, as the home agent core does with a ``RemoveBinding`` at expiry. This stands in for
the registration protocol: a real node installs the same Binding objects.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import sys
import time
from typing import Any

from mobileha.core.binding import Binding, Encap
from mobileha.dataplane.base import DataPlane, DataPlaneError
from mobileha.dataplane.choice import node_options, open_dataplane, summary

ENCAPS = {"ipip": Encap.IPIP, "gre": Encap.GRE, "minimal": Encap.MINIMAL}


def binding_from_json(d: dict[str, Any], now: float) -> Binding:
    enc = d.get("encap", "ipip")
    encap = ENCAPS[enc] if isinstance(enc, str) else Encap(int(enc))
    lifetime = int(d.get("lifetime", 0xFFFF))
    return Binding(
        home_addr=d["home_addr"],
        care_of=d["care_of"],
        ha_addr=d["ha_addr"],
        lifetime=lifetime,
        expires=float("inf") if lifetime == 0xFFFF else now + lifetime,
        ident=int(d.get("ident", 0)),
        flags=int(d.get("flags", 0)),
        encap=encap,
        gre_key=d.get("gre_key"),
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mobileha.dataplane.tool")
    p.add_argument(
        "--backend", default="userspace", choices=["auto", "userspace", "kernel", "ebpf", "memory"]
    )
    p.add_argument("--role", default="ha", choices=["ha", "fa"])
    p.add_argument("--tun", default="mhtun0")
    p.add_argument("--mtu", type=int, default=1500)
    p.add_argument("--home-prefix")
    p.add_argument("--home-iface")
    p.add_argument("--visitor-iface")
    p.add_argument("--vip-iface")
    p.add_argument("--capacity", type=int, default=4096, help="ebpf: map entries")
    p.add_argument("--bpf-object", help="ebpf: the compiled programs (default: the built one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    opts = node_options(
        args.role,
        device=args.tun,
        mtu=args.mtu,
        home_prefix=args.home_prefix,
        visitor_iface=args.visitor_iface,
        capacity=args.capacity,
    )
    opts.update(home_iface=args.home_iface, vip_iface=args.vip_iface, obj_path=args.bpf_object)
    try:
        opened = open_dataplane(args.backend, opts)
    except DataPlaneError as e:
        print(json.dumps({"ready": False, "error": str(e)}), flush=True)
        return 2
    dp: DataPlane = opened.dataplane
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    expiries: dict[tuple[str, str], Binding] = {}
    ready = {"ready": True, "backend": opened.backend, "not_taken": opened.refused}
    print(json.dumps(ready), flush=True)
    try:
        while True:
            now = time.monotonic()
            for key, b in list(expiries.items()):
                if b.expires <= now:
                    dp.remove(b)
                    del expiries[key]
            timeout = min((b.expires for b in expiries.values()), default=now + 1.0) - now
            r, _, _ = select.select([sys.stdin], [], [], max(0.0, min(timeout, 1.0)))
            if not r:
                continue
            line = sys.stdin.readline()
            if not line:
                break
            try:
                reply = _handle(dp, json.loads(line), expiries)
            except (KeyError, ValueError, TypeError, DataPlaneError, OSError) as e:
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(reply), flush=True)
            if reply.get("quit"):
                break
    finally:
        dp.close()
    return 0


def _handle(
    dp: DataPlane, cmd: dict[str, Any], expiries: dict[tuple[str, str], Binding]
) -> dict[str, Any]:
    op = cmd["op"]
    now = time.monotonic()
    if op == "install":
        b = binding_from_json(cmd["binding"], now)
        dp.install(b)
        if b.lifetime != 0xFFFF:
            expiries[b.key] = b
        return {"ok": True}
    if op == "remove":
        b = binding_from_json(cmd["binding"], now)
        dp.remove(b)
        expiries.pop(b.key, None)
        return {"ok": True}
    if op == "stats":
        st = dp.stats()
        sm = summary(dp)
        return {
            "ok": True,
            "backend": sm.backend,
            "tunnels": [{"home_addr": k[0], "care_of": k[1], **v} for k, v in st.tunnels.items()],
            "drops": st.drops,
            "totals": sm.totals,
            "errors": sm.errors,
        }
    if op == "routes":
        fn = getattr(dp, "installed_routes", None)
        return {"ok": True, "routes": fn() if fn else []}
    if op == "claim_vip":
        dp.claim_vip(cmd["addr"])
        return {"ok": True}
    if op == "release_vip":
        dp.release_vip(cmd["addr"])
        return {"ok": True}
    if op == "quit":
        return {"ok": True, "quit": True}
    raise ValueError(f"unknown op {op!r}")


if __name__ == "__main__":
    raise SystemExit(main())
