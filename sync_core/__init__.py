"""Pure domain rules of the RV3 ⇄ GHL sync: no I/O, no Azure, no SQL, no HTTP."""
