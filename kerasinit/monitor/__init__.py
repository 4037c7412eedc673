"""Training-health monitor."""
