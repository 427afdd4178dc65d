"""Pydantic models at the edges: the API's wire contract (camelCase) and the queue message, one module per resource."""
