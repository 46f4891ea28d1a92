"""What the operator watches besides the UI: metrics (a Prometheus view of the audit tables) and logs."""
