"""mobileha.tools."""
