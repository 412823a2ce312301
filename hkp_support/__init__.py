"""Shared infrastructure for the adapters and tools: where raddb/ is, the private
FreeRADIUS runner for the tests and the lab, the lab's state directory. Never imported
by the core, nor by code FreeRADIUS loads."""
