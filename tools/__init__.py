"""Local tooling that is not deployed: functions host, GHL sandbox, benchmarks."""
