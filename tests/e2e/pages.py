"""The main pages of the admin center, as (name, path), for the page-by-page checks."""

MAIN_PAGES = [
    ("home", "/"),
    ("users", "/users/"),
    ("credits", "/billing/communications-credits/"),
    ("add-funds", "/billing/communications-credits/add-funds/"),
    ("auto-recharge", "/billing/communications-credits/auto-recharge/"),
    ("payment-methods", "/billing/communications-credits/payment-methods/"),
    ("transactions", "/billing/communications-credits/transactions/"),
    ("licenses", "/billing/licenses/"),
    ("bills", "/billing/bills/"),
    ("pstn-usage", "/reports/pstn-usage/"),
    ("pstn-import", "/reports/pstn-usage/import/"),
    ("minute-pools", "/reports/minute-pools/"),
    ("reconciliation", "/reports/reconciliation/"),
    ("downloads", "/reports/downloads/"),
    ("notifications", "/notifications/"),
    ("settings", "/settings/"),
    ("settings-notifications", "/settings/notifications/"),
    ("rates", "/settings/rates/"),
    ("api-tokens", "/settings/api-tokens/"),
    ("audit", "/settings/audit/"),
]
