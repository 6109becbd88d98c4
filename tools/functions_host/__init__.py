"""A local Azure Functions host for machines without `func`: serves the same `function_app.app` over HTTP,
polls its storage queues and fires its timers with the real host's semantics."""
