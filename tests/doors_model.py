"""A tiny tabular model with a base objective and a proxy, shared by the audit and report tests."""

from __future__ import annotations

import numpy as np

from behavioral import TabularModel


def doors(n: int = 7, horizon: int = 12, same: bool = False) -> TabularModel:
    """A corridor with a door at each end (entering one ends the episode).

    Actions: left, right, stay, enter. Base objective "exit": the left door; proxy
    "right_door": the right one (or the left one too when ``same``, as on a train level).
    """
    S, A = n + 1, 4
    P = np.zeros((S, A, S))
    feats = np.zeros((S, A, 3))
    for s in range(n):
        P[s, 0, max(s - 1, 0)] = 1
        P[s, 1, min(s + 1, n - 1)] = 1
        P[s, 2, s] = 1
        if s in (0, n - 1):
            P[s, 3, n] = 1
            feats[s, 3, 0 if s == 0 else 1] = 1
        else:
            P[s, 3, s] = 1
        feats[s, :, 2] = 1
    P[n, :, n] = 1
    init = np.zeros(S)
    init[n // 2] = 1
    proxy = feats[..., 0] if same else feats[..., 1]
    return TabularModel(
        transitions=P,
        initial_state_dist=init,
        horizon=horizon,
        features=feats,
        feature_names=("left_door", "right_door", "step"),
        objectives={"exit": feats[..., 0], "right_door": proxy},
        base="exit",
    )
