"""The contract every part of RoboJam shares: NumPy-only, imported by model, service, infra and tests alike.

- `layout`: where the repository's parts live (one repo root, the shipped weights).
"""
