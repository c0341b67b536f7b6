"""Role-based recipients, notifications, deliveries and the message center."""
