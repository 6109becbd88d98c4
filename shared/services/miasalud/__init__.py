"""The MiaSalud wing's services: ManyChat's intake, the queue workers that keep the records, and staff's API."""
