"""RV3's own database as a source of appointments and patients: the port and its one adapter, `rv3-db`."""
