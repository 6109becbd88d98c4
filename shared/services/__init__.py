"""Services: use cases that combine the pure rules of sync_core with the adapters."""
