"""Trigger wiring by area; each module holds one Blueprint registered on the app in function_app.py."""
