"""hkp-radius protocol core: draft-vidya-mipshop-handover-keys-aaa-04 under PROFILE v1.

Sans-I/O and standard-library only: FreeRADIUS's embedded Python (Debian 3.11.2)
imports this package, and nothing here opens a socket, reads a clock or draws
randomness of its own. Time and randomness are arguments.
"""

__version__ = "0.1.0"
