"""Test helpers that ship with octcore so that plugin packages can test against it.

``octcore.testing.backend_contract.BackendContract`` is the contract suite every
backend's tests subclass.
"""
