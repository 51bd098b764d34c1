"""mobileha.aaa."""
