"""Local tooling that is not deployed: the Functions host, the GHL sandbox, Azurite launcher and benchmarks."""
