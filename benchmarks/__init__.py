"""PromptLab benchmarks: `./dev bench` (or `python -m benchmarks`). They print figures; they assert nothing."""
