"""Reads of the billing account, one module per sub-domain (billing, licenses)."""
