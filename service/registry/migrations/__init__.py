"""Alembic's environment and revisions for the registry (shipped as package data)."""
