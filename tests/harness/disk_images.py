"""Test harness fixture module (see tests/conftest.py)."""
