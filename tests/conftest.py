# The PyTorch twins need torch, which CI does not install: CI compares with their recorded AUCs.
collect_ignore = ["reference/torch_models.py"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Report how many inputs the fuzz suite (tests/test_fuzz.py) tried, by loader."""
    counts = config.__dict__.get("_hugectr_fuzz_counts")
    if counts:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        terminalreporter.write_line(f"hugectr fuzz: {sum(counts.values())} inputs tried ({detail})")
