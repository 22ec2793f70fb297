"""A tiny env that follows the environment contract of DESIGN.md, for policy/rollout tests.

A corridor of ``length`` cells with a door at each end. Each level (drawn from
``info["level_seed"]``) decides which door is the exit; on the ``train`` split it is always
the right one, on ``deploy`` either. Entering a door ends the episode (the door cell is
absorbing in the tabular model). Objectives: ``"exit"`` (1 for entering the exit) and
``"right_door"`` (1 for entering the right door) -- a proxy that coincides with the exit
on ``train``. Actions: 0 left, 1 right, 2 stay. With probability ``slip`` an action is
replaced by "stay". The start cell is uniform over the interior cells.

Observation: one-hot cell followed by the exit side (0 left, 1 right), in ``obs_dtype``
(``"float32"`` or ``"uint8"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from behavioral.tabular import TabularModel

ENV_ID = "behavioral_test/Corridor-v0"
HORIZON = 8


class CorridorEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        split: str = "train",
        length: int = 5,
        slip: float = 0.0,
        obs_dtype: str = "float32",
        training_reward: str = "exit",
        render_mode: str | None = None,
    ) -> None:
        self.render_mode = render_mode
        self.split = split
        self.length = length
        self.slip = slip
        self.dtype = np.dtype(obs_dtype)
        self.training_reward = training_reward
        self.action_space = gym.spaces.Discrete(3)
        high = 1 if self.dtype.kind == "u" else 1.0
        self.observation_space = gym.spaces.Box(0, high, (length + 1,), dtype=self.dtype)
        self.level_seed: int | None = None
        self.exit_right = True
        self.pos = 0
        self._model: TabularModel | None = None

    # -- contract
    def state_index(self) -> int:
        return self.pos

    def tabular_model(self) -> TabularModel:
        if self._model is None:
            L, A = self.length, 3
            P = np.zeros((L, A, L))
            obj = {n: np.zeros((L, A)) for n in ("exit", "right_door")}
            for s in range(L):
                for a in range(A):
                    if s in (0, L - 1):
                        P[s, a, s] = 1.0
                        continue
                    target = self._move(s, a)
                    P[s, a, target] += 1.0 - self.slip
                    P[s, a, s] += self.slip
                    for nxt, p in ((target, 1.0 - self.slip),):
                        obj["exit"][s, a] += p * self._exit_reward(nxt)
                        obj["right_door"][s, a] += p * float(nxt == L - 1)
            init = np.zeros(L)
            init[1 : L - 1] = 1.0 / (L - 2)
            feats = np.stack([np.arange(L) == 0, np.arange(L) == L - 1], axis=1).astype(float)
            self._model = TabularModel(
                transitions=P,
                initial_state_dist=init,
                horizon=HORIZON,
                features=feats,
                feature_names=("left_door", "right_door_cell"),
                objectives=obj,
                base="exit",
                cells=np.stack([np.zeros(L, dtype=int), np.arange(L)], axis=1),
                observations=np.stack([self._observe(s) for s in range(L)]),
            )
        return self._model

    # -- dynamics
    def _move(self, s: int, a: int) -> int:
        return s - 1 if a == 0 else s + 1 if a == 1 else s

    def _exit_reward(self, s: int) -> float:
        exit_cell = self.length - 1 if self.exit_right else 0
        return float(s == exit_cell)

    def _observe(self, s: int) -> np.ndarray:
        obs = np.zeros(self.length + 1, dtype=self.dtype)
        obs[s] = 1
        obs[-1] = 1 if self.exit_right else 0
        return obs

    def render(self) -> np.ndarray:
        img = np.zeros((8, 8 * self.length, 3), dtype=np.uint8)
        img[:, 8 * self.pos : 8 * self.pos + 8] = 255
        return img

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.level_seed = int(self.np_random.integers(0, 2**31 - 1))
        level_rng = np.random.default_rng(self.level_seed)
        right = True if self.split == "train" else bool(level_rng.integers(2))
        if right != self.exit_right or self._model is None:
            self._model = None
        self.exit_right = right
        self.pos = int(self.np_random.integers(1, self.length - 1))
        return self._observe(self.pos), {"level_seed": self.level_seed, "split": self.split}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        s = self.pos
        target = s if self.np_random.random() < self.slip else self._move(s, a)
        objectives = {
            "exit": self._exit_reward(target),
            "right_door": float(target == self.length - 1),
        }
        self.pos = target
        terminated = target in (0, self.length - 1)
        info: dict[str, Any] = {"objectives": objectives}
        if terminated:
            info["outcome"] = "exit" if objectives["exit"] else "other_door"
            info["door_side"] = "right" if target else "left"
        return self._observe(target), objectives[self.training_reward], terminated, False, info


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=CorridorEnv, max_episode_steps=HORIZON)


register()
