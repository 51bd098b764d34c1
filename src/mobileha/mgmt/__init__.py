"""mobileha.mgmt."""
