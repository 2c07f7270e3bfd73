"""What fitting on a sample costs in category quality: clinc150 (../shared/data/clinc150, the
22,500 in-scope utterances of 150 intents; Larson et al. 2019) clustered with a full fit and
with fits on samples of its distinct utterances (the rest assigned by nearest centroid,
:func:`levers_cli.cluster.assign.fit_and_assign`), each scored by NMI against the intents.

NMI: scikit-learn's ``normalized_mutual_info_score`` (arithmetic mean), uncategorized
utterances (``-1``) counted as one more cluster, as levers reports them.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLINC = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json.gz"
SAMPLE_SIZES = (5_000, 10_000)


def load_clinc() -> tuple[list[str], list[str]]:
    """Distinct in-scope utterances (train + val + test) and their intents."""
    with gzip.open(CLINC, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for text, intent in data[split]:
            seen.setdefault(" ".join(text.split()).lower(), intent)
    return list(seen), list(seen.values())


def sampling_cost(embedder_name: str) -> dict[str, Any]:
    """NMI of a full fit and of sample fits (``SAMPLE_SIZES``), with their times."""
    from sklearn.metrics import normalized_mutual_info_score

    from levers_cli.analysis import cluster_params
    from levers_cli.cluster.assign import fit_and_assign
    from levers_cli.config import load_config
    from levers_cli.embed import get_embedder

    texts, intents = load_clinc()
    embedder = get_embedder(embedder_name)
    adapt = getattr(embedder, "adapt", None)
    if adapt is not None:
        adapt(texts, [])
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    embed_s = time.perf_counter() - started
    weights = np.ones(len(texts))
    base = cluster_params(load_config(None))
    runs = []
    for max_fit in (len(texts), *SAMPLE_SIZES):
        params = dataclasses.replace(base, max_fit_queries=max_fit)
        started = time.perf_counter()
        fit = fit_and_assign(vectors, weights, params, texts=texts)
        seconds = time.perf_counter() - started
        runs.append(
            {
                "fitted_on": fit.fitted,
                "seconds": round(seconds, 1),
                "categories": len(np.unique(fit.labels[fit.labels >= 0])),
                "uncategorized_share": round(float(np.mean(fit.labels < 0)), 4),
                "nmi": round(float(normalized_mutual_info_score(intents, fit.labels)), 4),
            }
        )
        print(f"  fit on {fit.fitted:,}: {runs[-1]}", flush=True)
    return {
        "dataset": "clinc150 in-scope (train+val+test), distinct utterances",
        "utterances": len(texts),
        "embedder_name": embedder_name,
        "embedder": embedder.key,
        "embed_seconds": round(embed_s, 1),
        "runs": runs,
        "nmi_cost": {str(r["fitted_on"]): round(runs[0]["nmi"] - r["nmi"], 4) for r in runs[1:]},
    }
