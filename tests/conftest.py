"""Shared test set-up. Scenario builders live in tests/builders.py, not in fixtures."""
