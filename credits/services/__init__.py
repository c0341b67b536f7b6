"""Writes of the billing account. Each function is keyword-only, typed and atomic, and
writes its audit row in the same transaction as the change."""
