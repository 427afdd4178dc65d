"""The HTTP edge: a Powertools REST resolver, its routes, and the one exception→HTTP map."""
