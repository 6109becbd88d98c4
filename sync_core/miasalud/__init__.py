"""The MiaSalud wing's rules: ManyChat's events read and normalised, and merged into the records in field order."""
