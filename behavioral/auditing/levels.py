"""Episodes' level models merged into distinct levels (:func:`merge_levels`)."""

from __future__ import annotations

from collections.abc import Sequence

from behavioral.tabular import TabularModel, content_digest

__all__ = ["merge_levels"]


def _model_key(model: TabularModel) -> bytes:
    """Digest of everything but the initial distribution (IRL uses the data's starts)."""
    T = model.transitions
    objectives = [x for name, arr in model.objectives.items() for x in (name, arr)]
    return content_digest(
        (model.n_states, model.n_actions, model.horizon, model.discount, model.feature_names),
        T.indptr,
        T.indices,
        T.data,
        model.features,
        *objectives,
    )


def merge_levels(
    per_episode: Sequence[TabularModel],
) -> tuple[list[TabularModel], list[int]]:
    """Distinct level models and, per episode, the index of its level.

    Episodes whose models differ only in their initial state distribution (e.g. the same
    house with another start cell) share a level: IRL and the likelihoods use each
    episode's own start state, so nothing is lost and the levels are solved once.
    """
    by_id: dict[int, int] = {}
    by_key: dict[bytes, int] = {}
    models: list[TabularModel] = []
    levels: list[int] = []
    for m in per_episode:
        idx = by_id.get(id(m))
        if idx is None:
            key = _model_key(m)
            idx = by_key.get(key)
            if idx is None:
                idx = by_key[key] = len(models)
                models.append(m)
            by_id[id(m)] = idx
        levels.append(idx)
    return models, levels
