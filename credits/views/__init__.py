"""The billing pages of the credits app: credits and bills (billing), licenses and users
(licenses)."""
