"""Shared fixtures: the real pbmc68k_reduced data (shipped inside scanpy) and a small
synthetic count matrix with planted marker programs."""

from __future__ import annotations

import functools
import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

#: Planted programs: cell type -> (CL ID of the expected subtree root, marker genes).
PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "B": ("CL:0000236", ["MS4A1", "CD79A", "CD79B", "CD19", "BANK1", "CD22", "PAX5", "TCL1A"]),
    "T": ("CL:0000084", ["CD3D", "CD3E", "CD3G", "CD2", "IL7R", "LCK", "TRAC", "CD5"]),
    "NK": ("CL:0000623", ["NKG7", "GNLY", "KLRD1", "KLRF1", "PRF1", "NCAM1", "GZMB", "KLRC1"]),
    "Mono": ("CL:0000576", ["CD14", "LYZ", "S100A8", "S100A9", "FCN1", "VCAN", "CSF1R", "MNDA"]),
    "Hep": ("CL:0000182", ["ALB", "APOA1", "APOC3", "TTR", "SERPINA1", "HP", "FGB", "AHSG"]),
}
BACKGROUND = [f"BG{i:03d}" for i in range(150)] + ["ACTB", "GAPDH", "MT-CO1", "RPL13", "RPS18"]


@functools.cache
def _pbmc() -> ad.AnnData:
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def pbmc() -> ad.AnnData:
    """scanpy's pbmc68k_reduced: X scaled, .raw log-normalised (fresh copy per test)."""
    return _pbmc().copy()


def make_planted_counts(n_per_type: int = 40, seed: int = 0) -> ad.AnnData:
    """Poisson counts: every type expresses its 8 markers ~15x above background."""
    rng = np.random.default_rng(seed)
    genes = [g for _, (_, gs) in PROGRAMS.items() for g in gs] + BACKGROUND
    gi = {g: i for i, g in enumerate(genes)}
    blocks, labels = [], []
    for name, (_, markers) in PROGRAMS.items():
        rate = np.full(len(genes), 0.3)
        rate[[gi[g] for g in markers]] = 5.0
        rate[[gi[g] for g in ("ACTB", "GAPDH", "MT-CO1", "RPL13", "RPS18")]] = 20.0
        blocks.append(rng.poisson(rate, size=(n_per_type, len(genes))))
        labels += [name] * n_per_type
    X = sparse.csr_matrix(np.vstack(blocks).astype(np.float32))
    obs = pd.DataFrame({"truth": pd.Categorical(labels)},
                       index=[f"cell{i}" for i in range(len(labels))])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))


@pytest.fixture
def planted() -> ad.AnnData:
    """Small synthetic raw-count AnnData with planted marker programs (obs['truth'])."""
    return make_planted_counts()


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: no colour, a wide terminal."""
    env = dict(os.environ)
    for var in ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE"):
        env.pop(var, None)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


@pytest.fixture(autouse=True)
def _isolated_llm_env(tmp_path, monkeypatch):
    """Every test gets its own LLM response cache and no provider keys or URLs."""
    monkeypatch.setenv("LLM4CELL_CACHE_DIR", str(tmp_path / "llm_cache"))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A real llama.cpp OpenAI-compatible server with SmolLM2-135M (shared, read-only use:
    tests that stop or restart a server start their own)."""
    from llama_server import LlamaServer, require_llm_stack

    model = require_llm_stack()
    server = LlamaServer(model, tmp_path_factory.mktemp("llama")).start()
    yield server
    server.stop()


#: Test markers. ``make test`` runs everything (CI too); ``make test-fast`` leaves out
#: ``slow`` and ``llm``. No test needs the network: servers run on 127.0.0.1.
MARKERS = {
    "slow": "takes more than about 5 s on 2 cores (large data, the whole demo)",
    "llm": "needs the real llama.cpp server stack (llama-cpp-python[server] + SmolLM2 GGUF)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses the real llama.cpp server fixture is an ``llm`` test."""
    for item in items:
        if "llm_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.llm)
