from mobileha import cli
from mobileha.wire import DecodeError, UnknownCriticalExtension


def test_cli_help(capsys: object) -> None:
    assert cli.main(["--help"]) == 0


def test_decode_error_kinds() -> None:
    err = UnknownCriticalExtension(77)
    assert isinstance(err, DecodeError)
    assert err.reason == "unknown-critical-extension"
    assert err.ext_type == 77
