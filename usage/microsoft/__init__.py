"""The Microsoft Graph connector: pulls `getPstnCalls` and `getDirectRoutingCalls` for each
connected organization, on a schedule, through the same ingestion as the API.

- clouds: the national clouds' sign-in and Graph addresses (and their replacements);
- secrets: the connection's secret and certificate, encrypted at rest;
- errors: what went wrong, in words an admin can act on;
- client: app-only sign-in (msal) and Graph's pages (requests), with retries;
- pull: the services (save, test, pull, backfill) and the run history.
"""
