"""Node configuration: one TOML file per node -> typed, validated, frozen dataclasses.

By concern:

* :mod:`~mobileha.config.model`: the typed config (:class:`Config` and one dataclass per
  table);
* :mod:`~mobileha.config.schema`: the one key table (type, default, meaning of every key),
  the source of the reference in ``docs/config.md`` and the README
  (:mod:`~mobileha.config.reference` renders them);
* :mod:`~mobileha.config.validate`: every problem, named by its full key path;
* :mod:`~mobileha.config.load`: TOML -> checked rows -> :class:`Config`;
* :mod:`~mobileha.config.check`: ``mobileha check``.

Nothing here knows the nodes: :mod:`mobileha.compose` maps a :class:`Config` to core settings
and node objects.
"""

from __future__ import annotations

from mobileha.config.check import main, summary
from mobileha.config.load import config_from_dict, load_config, loads_config
from mobileha.config.model import (
    ALG_HMAC_MD5,
    ALG_PREFIX_SUFFIX,
    ALGORITHMS,
    DYNAMIC,
    ROLES,
    AaaConfig,
    AaaUser,
    Config,
    ConfigError,
    DataplaneConfig,
    DfpConfig,
    Endpoint,
    ForeignAgentConfig,
    HomeAgentConfig,
    HsrpAuth,
    HsrpConfig,
    HsrpGroupConfig,
    LogConfig,
    ManagementConfig,
    MobileNodeConfig,
    MobileNodeSA,
    NodeSection,
    PeerSA,
    RedundancyConfig,
    SecurityAssociation,
    SlbConfig,
    SlbReal,
)
from mobileha.config.schema import ROLE_SECTIONS, SCHEMA, reference_keys, reference_table
from mobileha.config.validate import parse_endpoint, parse_secret

__all__ = [
    "ALGORITHMS",
    "ALG_HMAC_MD5",
    "ALG_PREFIX_SUFFIX",
    "DYNAMIC",
    "ROLES",
    "ROLE_SECTIONS",
    "SCHEMA",
    "AaaConfig",
    "AaaUser",
    "Config",
    "ConfigError",
    "DataplaneConfig",
    "DfpConfig",
    "Endpoint",
    "ForeignAgentConfig",
    "HomeAgentConfig",
    "HsrpAuth",
    "HsrpConfig",
    "HsrpGroupConfig",
    "LogConfig",
    "ManagementConfig",
    "MobileNodeConfig",
    "MobileNodeSA",
    "NodeSection",
    "PeerSA",
    "RedundancyConfig",
    "SecurityAssociation",
    "SlbConfig",
    "SlbReal",
    "config_from_dict",
    "load_config",
    "loads_config",
    "main",
    "parse_endpoint",
    "parse_secret",
    "reference_keys",
    "reference_table",
    "summary",
]
