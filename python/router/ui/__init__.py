"""The admin dashboard served at `/ui`: static ES modules and CSS shipped in this package (no Node at run time),
login sessions exchanged for a gateway API key, and nothing else: every page calls the management API, so what
a user may see and do is exactly what their key may do there.

`sessions` (imported by the management API's dispatcher) and `serve` (the `/ui` routes) are imported directly.
"""
