"""Templates: placeholders and rendering, typed variables, and the template use cases."""
