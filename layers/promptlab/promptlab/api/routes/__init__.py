"""The routes, one module per resource, each a Powertools `Router` included by `promptlab.api.app`."""
