"""The contract every part of RoboJam shares: NumPy-only, imported by model, service, infra and tests alike.

- `performance`: the MicroJam CSV (header, limits, one parse, one clean, one format).
- `artifact`: the weights artifact (format name, version, settings, keys and shapes, container, checks).
- `layout`: where the repository's parts live (one repo root, the shipped weights).
"""
