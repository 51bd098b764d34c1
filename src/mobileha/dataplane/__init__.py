"""mobileha.dataplane."""
