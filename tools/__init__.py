"""Build and release tools run by `./dev` (not shipped in any function)."""
