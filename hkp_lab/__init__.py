"""hkp-lab: a private FreeRADIUS with the HKS, an AR and MN exchanges through them."""
