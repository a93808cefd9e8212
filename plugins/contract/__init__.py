"""The contract: what the operator wrote down, and the words of a verdict.

A leaf package: it imports nothing of the suite outside itself and nothing of pytest, so
every layer (checks, fixtures, plugins, the reference app) can read the same parsed contract.
"""
