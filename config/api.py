"""The JSON API under /api/v1/ (django-ninja), with its OpenAPI schema at
/api/v1/openapi.json. Each app contributes a router from its api.py."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="Credits Center API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
