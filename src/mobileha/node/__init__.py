"""mobileha.node."""
