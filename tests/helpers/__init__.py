"""Helpers shared by the test modules: one copy each, imported by the tests that use them.

No test module imports another test module; what two of them share lives here (or in
``tests/conftest.py`` when it is a fixture every module may use).
"""
