"""Network simulations driven by the sans-IO protocol cores (design.md §3, §4 practice 1)."""
