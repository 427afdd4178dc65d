"""Tenants and their keys: authentication, budgets, idempotency and usage reports."""
