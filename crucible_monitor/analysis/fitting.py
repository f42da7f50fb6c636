"""Fitting an IsolationForest with scikit-learn, run in a child process so the agent never loads scikit-learn.

    python -m crucible_monitor.analysis.fitting INPUT.npz OUTPUT.npz

``INPUT.npz`` holds ``X`` (rows × features) and ``params`` (a JSON object: ``n_estimators``, ``max_samples``,
``random_state``); ``OUTPUT.npz`` receives the trees as flat arrays (:class:`CompactForest`), which the agent scores
with numpy alone. scikit-learn, about 80 MB of memory once imported, lives only as long as the child.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest

from crucible_monitor.analysis.forest import CompactForest, average_path_length

__all__ = ["fit_forest", "main"]


def fit_forest(x: npt.NDArray[np.float64], params: dict[str, Any]) -> CompactForest:
    """Fit scikit-learn's IsolationForest on ``x`` and flatten its trees."""
    model = IsolationForest(
        n_estimators=int(params["n_estimators"]),
        max_samples=min(int(params["max_samples"]), len(x)),
        random_state=int(params["random_state"]),
    ).fit(x)
    features, thresholds, lefts, rights, leaf_values, roots = [], [], [], [], [], []
    offset = 0
    for estimator in model.estimators_:
        tree = estimator.tree_
        n = tree.node_count
        depth = np.zeros(n, dtype=np.int64)
        for node in range(n):  # children always come after their parent
            for child in (tree.children_left[node], tree.children_right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
        leaf = tree.children_left == -1
        # sklearn's path length at a leaf: nodes on the path (depth + 1) + c(samples in the leaf) - 1
        leaf_values.append(np.where(leaf, depth + average_path_length(tree.n_node_samples), 0.0))
        features.append(np.where(leaf, 0, tree.feature))
        thresholds.append(tree.threshold)
        lefts.append(np.where(leaf, -1, tree.children_left + offset))
        rights.append(np.where(leaf, -1, tree.children_right + offset))
        roots.append(offset)
        offset += n
    return CompactForest(
        feature=np.concatenate(features).astype(np.int64),
        threshold=np.concatenate(thresholds).astype(np.float64),
        left=np.concatenate(lefts).astype(np.int64),
        right=np.concatenate(rights).astype(np.int64),
        leaf_value=np.concatenate(leaf_values).astype(np.float64),
        roots=np.array(roots, dtype=np.int64),
        max_samples=int(model.max_samples_),
    )


def main(argv: list[str] | None = None) -> None:
    """Read ``X`` and ``params`` from the input file, write the fitted forest to the output file."""
    source, target = (Path(a) for a in (argv if argv is not None else sys.argv[1:]))
    with np.load(source) as data:
        x = data["X"]
        params = json.loads(str(data["params"]))
    fit_forest(x, params).save(target)


if __name__ == "__main__":
    main()
