"""hkp-ar: the access router daemon (draft §6.3) over the sans-I/O AR role.

Adapters only: configuration, pyrad RADIUS client with realms and fail-over, UDP and
raw IPv6 transports, netlink neighbour cache, SQLite key store, JSON logs.
"""
