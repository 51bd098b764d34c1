"""``mobileha reload``'s text: what was applied, what needs a restart, why a file was
refused; a config the node would refuse is not sent (exit 2, the problems with their keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobileha.mgmt.reload_client import main, render


def test_render() -> None:
    ok = render(
        {
            "ok": True,
            "config": "/etc/mobileha/slb.toml",
            "changed": ["slb.real[0].weight: 8 -> 2"],
            "restart_needed": ["slb.port: 434 -> 435"],
        }
    )
    assert ok.splitlines() == [
        "reloaded /etc/mobileha/slb.toml: 1 change(s) applied",
        "  applied  slb.real[0].weight: 8 -> 2",
        "  RESTART  slb.port: 434 -> 435  (needs a restart, not applied)",
    ]
    bad = render({"ok": False, "config": "x.toml", "errors": ["slb.port: expected integer"]})
    assert bad.splitlines()[0].startswith("reload refused, the node runs on its old config")
    assert bad.splitlines()[1] == "  slb.port: expected integer"


def test_an_invalid_file_is_not_sent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[node]\nrole = "slb"\n[slb]\nvirtual_address = "10.0.0.1"\nport = 0\n')
    assert main(["--config", str(cfg)]) == 2
    assert "slb.port" in capsys.readouterr().err
