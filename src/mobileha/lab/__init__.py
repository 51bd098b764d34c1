"""mobileha.lab."""
