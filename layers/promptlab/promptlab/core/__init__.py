"""Cross-cutting basics every layer may use: settings, errors, observability, time, ids, money, hashing."""
