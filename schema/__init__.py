"""The machine-readable contract: openrpc.json (methods) and notifications.json (events)."""
