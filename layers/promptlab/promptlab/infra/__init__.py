"""Adapters to AWS and Redis: SQS, publishers, secrets, the result cache, rate limits, throttling."""
