"""HomeAgent.reconfigure (a reload): bindings and pool allocations stay; the pool is
rebuilt only when the pool or the static home addresses change; what the home agent serves
(addresses, port, home prefix) is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mobileha.core.actions import Send
from mobileha.wire.mip import RegistrationReply
from tests.helpers.cluster_net import CLIENT, PORT, WALL0, home_agent, rrq

HA = "10.0.0.1"


def test_pool_kept_rebuilt_and_refusals() -> None:
    ha = home_agent(HA, HA, 3, pool="10.64.0.0/24")
    ha.unix_offset = WALL0
    out = ha.receive_datagram(rrq(0, HA, WALL0 + 1.0), (CLIENT, PORT), (HA, PORT), 1.0)
    (send,) = [a for a in out if isinstance(a, Send)]
    hoa = RegistrationReply.decode(send.payload).home_addr
    pool = ha.pool
    ha.reconfigure(replace(ha.settings, max_lifetime=100), ha.sas)
    assert ha.pool is pool and ha.max_lifetime == 100  # same pool: not rebuilt
    ha.reconfigure(replace(ha.settings, pool="10.64.0.0/25"), ha.sas)
    assert ha.pool is not pool and ha.pool is not None and ha.pool.is_allocated(hoa)
    assert ha.table.bindings_of(hoa)
    with pytest.raises(ValueError, match="home_prefix"):
        ha.reconfigure(replace(ha.settings, home_prefix="10.65.0.0/16"), ha.sas)
