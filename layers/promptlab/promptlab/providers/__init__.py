"""LLM providers behind one `Provider` protocol (`base`); `registry` lists them and builds each adapter.

Provider SDKs are imported only when a provider is first built, i.e. only by the worker (and the economy
lane), only for the provider used.
"""
