"""mobileha.core."""
