"""Datasets: versioned rows of inputs (and expected answers) to run template versions over."""
