"""Local tooling that is not deployed: Functions host, Azurite launcher, GHL sandbox, benchmarks."""
