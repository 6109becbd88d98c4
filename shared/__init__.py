"""Adapters (settings, SQL store, GHL client, queues, tokens, telemetry) and the services that compose them."""
