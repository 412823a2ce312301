"""The MN client: transports (UDP, raw IPv6), a socket driver for hkp_radius.mn, the
`hkp-mn` command and its key file."""
