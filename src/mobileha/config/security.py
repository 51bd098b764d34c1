"""What a valid config still leaves unauthenticated: ``mobileha check`` prints one warning
per channel, each naming the key that closes it.

A config that passes validation may still accept input an outsider can forge: HSRP with a
cleartext password, DFP limited by address only, requests and replies between FA and HA
without an FA-HA security association, relay tags trusted on the SLB's source address, a
management API any local user can read. These are allowed (interop, lab set-ups), but an
operator should see them; :func:`channel_warnings` lists them as ``"key: text"`` strings.
"""

from __future__ import annotations

from mobileha.config.model import Config


def channel_warnings(cfg: Config) -> list[str]:
    """One ``"key: what is open; what to set"`` string per unauthenticated channel."""
    out: list[str] = []
    m = cfg.management
    if m.enabled and m.token is None:
        out.append(
            f"management.token: not set: anyone who can connect to {m.listen} (every local "
            "user) reads the node's state (NAIs, home and care-of addresses); set "
            "management.token or management.token_file"
        )
    ha = cfg.home_agent
    if ha is not None:
        if cfg.hsrp is not None and cfg.hsrp.authentication.kind == "text":
            out.append(
                "hsrp.authentication: text authentication travels in clear: whoever sees one "
                'Hello can take the Active role; set hsrp.authentication = "md5:<key-string>"'
            )
        if not cfg.foreign_agents:
            out.append(
                "foreign_agent: no FA-HA security association: the extensions foreign agents "
                "add (GRE key, CVSEs) and the replies they relay are not authenticated; add "
                "[[foreign_agent]] entries (address, spi, key)"
            )
        if ha.trusted_slb and ha.slb_trust == "source-address":
            out.append(
                'home_agent.slb_trust: "source-address": a relay tag is honoured on the '
                "SLB's source address alone, so anyone who can send from it chooses where "
                "replies go; add [[home_agent.slb_sa]] for each of home_agent.trusted_slb and "
                'set home_agent.slb_trust = "sa"'
            )
    if cfg.dfp is not None and cfg.dfp.password is None and cfg.role in ("home-agent", "slb"):
        peers = ", ".join(cfg.dfp.allow) or "none"
        out.append(
            f"dfp.password: not set: DFP is trusted on the peer address alone ({peers}); "
            "set dfp.password"
        )
    slb = cfg.slb
    if slb is not None and slb.mode == "relay" and slb.relay_sa is None:
        out.append(
            "slb.relay_sa: not set: the real HAs cannot authenticate the relay tag (and must "
            'trust this SLB by its address, home_agent.slb_trust = "source-address"); set '
            "[slb.relay_sa] and the same SA as [[home_agent.slb_sa]] on each real HA"
        )
    fa = cfg.foreign_agent
    if fa is not None and not fa.home_agent_sas:
        out.append(
            "foreign_agent.home_agent_sa: none: requests go to the home agents unauthenticated "
            "and replies are taken on their source address alone (foreign_agent.home_agent, "
            "foreign_agent.real_home_agents); add [[foreign_agent.home_agent_sa]] entries"
        )
    return out


__all__ = ["channel_warnings"]
