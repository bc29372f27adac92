"""The service's routers, one per concern."""
