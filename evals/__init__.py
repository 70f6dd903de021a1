"""Safety evaluation: metrics with Wilson intervals, guards, the eval CLI, robustness and reports."""
