"""benchmarks/README.md's result tables are the ones generated from the raw results (benchmarks/*.json)."""

from __future__ import annotations

import copy
import json

from benchmarks import overhead, results


def test_the_readmes_tables_are_generated_from_the_committed_results():
    text = results.README.read_text()
    assert results.with_tables(text, results.current_tables()) == text, (
        "benchmarks/README.md's tables are stale: run `python -m benchmarks.results`"
    )
    assert results.main(["--check"]) == 0


def test_the_inference_table_divides_each_method_by_the_engine():
    latest = json.loads(results.INFERENCE_RESULTS.read_text())
    methods = ("keras_predict_stateful", "keras_predict_on_batch", "numpy_engine")
    latest["ms_per_request"] = dict(zip(methods, (1000.0, 30.0, 10.0), strict=True))
    latest["cpu_ms_per_request"] = dict(zip(methods, (800.0, 20.0, 8.0), strict=True))
    rows = results.inference_table(latest).splitlines()
    assert rows[4].endswith("| 1,000.0 | 800.0 | 100.0× / 100.0× |")
    assert rows[5].endswith("| 30.0 | 20.0 | 3.0× / 2.5× |")
    assert rows[6].endswith("| 10.0 | 8.0 | 1.0× / 1.0× |")


def test_the_load_table_compares_on_with_off_from_the_same_run():
    load = json.loads(results.LOAD_RESULTS.read_text())
    model = copy.deepcopy(next(iter(load["models"].values())))
    for row in model["off"]["results"]:
        row.update(req_per_s=10.0, p50_ms=20.0, p99_ms=100.0)
    for row in model["on"]["results"]:
        row.update(req_per_s=35.0, p50_ms=21.0, p99_ms=150.0, shed_share=0.25)
    load["models"] = {"2x9 test": model}
    row = results.load_table(load).splitlines()[-1]
    assert row.startswith("| 2x9 test | 3.5× | no | 1.05× | 150.0 ms | 25.0% |")


def test_rewriting_replaces_only_the_block_between_the_markers():
    stale = f"before\n{results.BEGIN}\n| old |\n{results.END}\nafter\n"
    assert results.with_tables(stale, "| new |") == f"before\n{results.BEGIN}\n| new |\n{results.END}\nafter\n"


def test_the_peers_tables_divide_each_method_by_the_projects_fp32_engine():
    peers = json.loads(results.PEERS_RESULTS.read_text())
    model = copy.deepcopy(next(iter(peers["models"].values())))
    model["request_ms"]["project_int8"] = dict(model["request_ms"]["project_fp32"])  # a second project precision
    model["checks"]["project_int8"] = model["checks"]["litert_int8"]
    for method, result in model["request_ms"].items():
        median = {"project_fp32": 20.0, "litert_fp32": 8.0, "project_int8": 4.0}.get(method, 10.0)
        result.update(median=median, min=median * 0.9, max=median * 1.1)
    model["step_us"] = {"16": {m: {"median": 100.0, "min": 90.0, "max": 110.0, "peak_fraction": 0.5}
                               for m in model["request_ms"]}}  # fmt: skip
    peers["models"] = {"2x9 test": model}
    lines = results.peers_tables(peers).splitlines()
    assert "| project engine (fp32) | 20.00 (±10%) | 1.00 |" in lines
    assert "| ONNX Runtime, dynamic int8 | 10.00 (±10%) | 0.50 |" in lines
    assert "| project engine (fp32) | 100.0 (±10%) · 50% |" in lines
    goals = lines[lines.index("| issue 20's goals (medians of this run) | 2x9 test |") :]
    assert (
        "| project fp32 / best fp32 peer, whole request (goal ≤ 0.95) | 2.50 (LiteRT (XNNPACK), one-step model) |"
        in goals
    )
    assert "| project engine (int8) speed-up over fp32, whole request | 5.00× |" in goals
    assert "| project engine (int8) speed-up over fp32, B=16 step | 1.00× |" in goals


def overhead_report(base: float, this: float) -> dict:
    """A bench-overhead record whose every CPU figure is `base` or `this` µs, req/s the other way round."""
    report = json.loads(results.OVERHEAD_RESULTS.read_text())
    report["trees"] = {"base": "1111111", "this": "2222222"}
    for name, value in (("base", base), ("this", this)):
        cell = {"median": value, "min": value - 1, "max": value + 1}
        report["stages"][name] = {key: dict(cell) for key in report["stages"][name]}
        report["loopback"][name] = {
            level: {"median": value * 2, "min": value * 2 - 1, "max": value * 2 + 1} for level in ("1", "16")
        }
        for row in report["load"][name].values():
            row["req_per_s"] = {"median": 10_000 / value, "min": 1.0, "max": 1e6}
    return report


def test_the_overhead_table_divides_this_checkout_by_the_base():
    lines = overhead.markdown(overhead_report(base=400.0, this=100.0)).splitlines()
    request = next(line for line in lines if line.startswith("| **in process, whole request**"))
    assert request.endswith("| 400 (399–401) | 100 (99–101) | 0.25× |")
    loopback = next(line for line in lines if line.startswith("| **over loopback, 1 client**"))
    assert loopback.endswith("| 800 (799–801) | 200 (199–201) | 0.25× |")
    gunicorn = next(line for line in lines if line.startswith("| gunicorn worker and sockets"))
    assert gunicorn.endswith("| 400 | 100 | 0.25× |")  # loopback minus in process
    assert next(line for line in lines if line.startswith("| req/s at 16 clients")).endswith("| 4.00× |")


def test_stage_rows_split_the_whole_request_into_its_stages():
    found = dict(request=1000.0, context=20.0, fields=50.0, validation=5.0, csv=300.0)
    found.update(admission=5.0, handoff=40.0, reply=100.0, metrics=15.0)
    rows = overhead.stage_rows(found)
    assert rows["json"] == 30.0 and rows["validation"] == 5.0
    assert rows["flask"] == 1000.0 - 30.0 - 5.0 - 300.0 - 5.0 - 40.0 - 100.0 - 15.0
    parts = ("json", "validation", "csv", "admission", "handoff", "reply", "metrics", "flask")
    assert sum(rows[key] for key in parts) == rows["request"]  # the request context is in the Flask remainder
