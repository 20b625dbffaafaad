"""Shared test support: fixtures' building blocks, harnesses, the toy model.

Used by the unit and integration tests and by `bench/fault_injection.py`.
"""
