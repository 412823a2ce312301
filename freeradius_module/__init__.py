"""hkp-radius inside FreeRADIUS: the rlm_python3 adapter for the HKS (draft §6.4),
its SQLite replay store, the drop-in installer and the private-instance runner.

FreeRADIUS's embedded Python (Debian 3.11) imports `freeradius_module.rlm_hkp_hks`,
so this package's import must pull in nothing beyond the standard library and
`hkp_radius`; `instance` (pyrad) is imported only by tests and the lab.
"""
