"""The site platform that billing and the other apps build on: organizations, people and
their roles, access, audit, the outbox of domain events, navigation, the home page's cards,
error pages, health, middleware and generic helpers (client address, text, CSV, database).
"""
