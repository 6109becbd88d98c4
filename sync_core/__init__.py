"""Pure domain rules of the RV3 ⇄ GHL sync: models, mapping, validation, hashing and decisions (no I/O)."""
