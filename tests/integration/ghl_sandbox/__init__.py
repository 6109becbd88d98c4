"""Integration tests of the GHL sandbox (tools/ghl_sandbox) over real HTTP."""
