"""mobileha: Mobile IPv4 home agent, HA-SLB and HSRP redundancy."""

__version__ = "0.1.0"
