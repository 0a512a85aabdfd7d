"""Development helpers that the tests, the benchmarks and staging share, one definition each.

- `devtools.ports`: a free loopback port.
- `devtools.gunicorn`: `GunicornProcess`, a real gunicorn server subprocess (the service's own config by default).
- `devtools.performances`: typical performances, as model events and as the app's CSV.
- `devtools.random_weights`: random but valid weights artifacts, written through the contract.

Never imported by `service/`, `model/` or the image; run from the repository root (`python -m pytest`,
`python -m benchmarks.load`, `python -m staging`), which puts it on `sys.path`.
"""
