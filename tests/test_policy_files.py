"""Policy zips from people being audited: loaded without unpickling, checked, and equal to
what stable-baselines3's own loader gives for honest files."""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from behavioral.environments import make_env
from behavioral.errors import (
    BehavioralError,
    PolicyEnvMismatchError,
    PolicyFileError,
    UnsafePolicyError,
    ZooFileError,
)
from behavioral.policies import MAX_POLICY_DATA_BYTES, load_ppo, train_ppo
from behavioral.rollout import rollout
from behavioral.zoo import ZOO, load_zoo


class _Marker:
    """Unpickling this writes the marker file: a stand-in for any code an attacker runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _rezip(src: Path, dst: Path, **members: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = members.pop(info.filename, None)
            zout.writestr(info.filename, zin.read(info) if data is None else data)
        for name, data in members.items():
            zout.writestr(name, data)
    return dst


def _data(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("data"))


def _probs(model, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        t, _ = model.policy.obs_to_tensor(obs)
        return model.policy.get_distribution(t).distribution.probs.numpy()


# --------------------------------------------------------------------------- the zoo


@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_entry_loads_safely_and_acts_as_sb3_loads_it(name: str) -> None:
    entry = ZOO[name]
    safe = load_zoo(name)
    reference = PPO.load(entry.path, device="cpu")  # the package's own file: trusted
    assert safe.behavioral_metadata == reference.behavioral_metadata
    assert safe.num_timesteps == reference.num_timesteps
    for split in ("train", "deploy"):
        env = entry.make_env(split=split)
        ours = rollout(safe, env, episodes=4, seed=3)
        theirs = rollout(reference, env, episodes=4, seed=3)
        for a, b in zip(ours.trajectories, theirs.trajectories, strict=True):
            np.testing.assert_array_equal(a.acts, b.acts)
        obs = np.concatenate([t.obs for t in ours.trajectories])
        np.testing.assert_array_equal(_probs(safe, obs), _probs(reference, obs))
        d1, _ = safe.predict(obs, deterministic=True)
        d2, _ = reference.predict(obs, deterministic=True)
        np.testing.assert_array_equal(d1, d2)


def test_loading_does_not_touch_global_rngs() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    np_before = np.random.get_state()[1].copy()  # noqa: NPY002
    load_zoo("reddoors-train")
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)  # noqa: NPY002


# --------------------------------------------------------------------------- malicious zips


def test_a_pickled_payload_in_data_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned-data"
    data = _data(ZOO["reddoors-train"].path)
    payload = base64.b64encode(pickle.dumps(_Marker(marker))).decode()
    for key in ("policy_class", "observation_space", "action_space", "lr_schedule"):
        data[key][":serialized:"] = payload  # readable fields kept: it still looks honest
    evil = _rezip(ZOO["reddoors-train"].path, tmp_path / "evil.zip", data=json.dumps(data).encode())
    model = load_ppo(evil)  # the readable fields rebuild the policy; no blob is decoded
    assert not marker.exists()
    env = ZOO["reddoors-train"].make_env(split="deploy")
    rollout(model, env, episodes=2, seed=0)
    assert not marker.exists()
    # The payload is real: SB3's own loader (trusted=True) runs it.
    with pytest.raises(BehavioralError):
        load_ppo(evil, trusted=True)
    assert marker.exists()


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned-weights"
    evil = _rezip(
        ZOO["reddoors-train"].path,
        tmp_path / "evil.zip",
        **{"policy.pth": pickle.dumps(_Marker(marker))},
    )
    with pytest.raises(UnsafePolicyError, match="could only be read by unpickling"):
        load_ppo(evil)
    assert not marker.exists()
    # a torch file holding an arbitrary object (not just tensors) is refused too
    buf = io.BytesIO()
    torch.save({"mlp_extractor.policy_net.0.weight": _Marker(marker)}, buf)
    evil2 = _rezip(
        ZOO["reddoors-train"].path, tmp_path / "evil2.zip", **{"policy.pth": buf.getvalue()}
    )
    with pytest.raises(UnsafePolicyError):
        load_ppo(evil2)
    assert not marker.exists()


def test_unknown_classes_need_trust(tmp_path: Path) -> None:
    data = _data(ZOO["reddoors-train"].path)
    data["policy_class"]["__init__"] = "<function EvilPolicy.__init__ at 0x0>"
    evil = _rezip(ZOO["reddoors-train"].path, tmp_path / "a.zip", data=json.dumps(data).encode())
    with pytest.raises(UnsafePolicyError, match="policy class"):
        load_ppo(evil)
    data = _data(ZOO["reddoors-train"].path)
    data["policy_kwargs"] = {
        ":type:": "<class 'dict'>",
        ":serialized:": "AAAA",
        "activation_fn": "<class 'evil.Activation'>",
    }
    evil = _rezip(ZOO["reddoors-train"].path, tmp_path / "b.zip", data=json.dumps(data).encode())
    with pytest.raises(UnsafePolicyError, match="activation_fn"):
        load_ppo(evil)


@pytest.mark.parametrize(
    ("member", "mutate", "error", "match"),
    [
        ("data", lambda d: b"{not json", PolicyFileError, "not valid JSON"),
        ("data", lambda d: b"[1, 2]", PolicyFileError, "JSON object"),
        ("policy.pth", lambda d: b"garbage", UnsafePolicyError, "unpickling"),
    ],
)
def test_malformed_members(tmp_path: Path, member, mutate, error, match) -> None:
    src = ZOO["reddoors-train"].path
    with zipfile.ZipFile(src) as zf:
        old = zf.read(member)
    bad = _rezip(src, tmp_path / "bad.zip", **{member: mutate(old)})
    with pytest.raises(error, match=match):
        load_ppo(bad)


def test_weights_that_do_not_fit_the_network(tmp_path: Path) -> None:
    src = ZOO["reddoors-train"].path
    with zipfile.ZipFile(src) as zf:
        state = torch.load(io.BytesIO(zf.read("policy.pth")), weights_only=True)
    cut = dict(state)
    key = next(iter(cut))
    cut[key] = cut[key][..., :1]
    buf = io.BytesIO()
    torch.save(cut, buf)
    with pytest.raises(PolicyFileError, match="the network needs"):
        load_ppo(_rezip(src, tmp_path / "a.zip", **{"policy.pth": buf.getvalue()}))
    nan = {k: v.clone() for k, v in state.items()}
    nan[key][0] = float("nan")
    buf = io.BytesIO()
    torch.save(nan, buf)
    with pytest.raises(PolicyFileError, match="NaN"):
        load_ppo(_rezip(src, tmp_path / "b.zip", **{"policy.pth": buf.getvalue()}))
    missing = {k: v for k, v in state.items() if k != key}
    buf = io.BytesIO()
    torch.save(missing, buf)
    with pytest.raises(PolicyFileError, match="missing"):
        load_ppo(_rezip(src, tmp_path / "c.zip", **{"policy.pth": buf.getvalue()}))


def test_size_limits(tmp_path: Path) -> None:
    src = ZOO["reddoors-train"].path
    with pytest.raises(PolicyFileError, match="above the limit"):
        load_ppo(src, max_bytes=1000)
    big = _rezip(src, tmp_path / "big.zip", data=b" " * (MAX_POLICY_DATA_BYTES + 1))
    with pytest.raises(PolicyFileError, match="above the limit"):
        load_ppo(big)


def test_not_a_zip_and_missing_members(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PolicyFileError, match="cannot load"):
        load_ppo(junk)
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(PolicyFileError, match="no 'data'"):
        load_ppo(tmp_path / "empty.zip")
    with pytest.raises(PolicyFileError, match="not a file"):
        load_ppo(tmp_path)
    with pytest.raises(BehavioralError):
        load_ppo(junk, trusted="yes")


# --------------------------------------------------------------------------- fitting the env


def test_observation_mismatch_is_one_clear_error() -> None:
    model = load_zoo("waterplants-kettle")
    env = make_env("behavioral/RedDoors-v0")
    with pytest.raises(PolicyEnvMismatchError) as info:
        load_ppo(ZOO["waterplants-kettle"].path, env=env)
    msg = str(info.value)
    assert "(9, 6, 9)" in msg and "(9, 9, 9)" in msg and "\n" not in msg
    from behavioral.policies import check_policy_fits_env

    with pytest.raises(PolicyEnvMismatchError):
        check_policy_fits_env(model, env)
    with pytest.raises(PolicyEnvMismatchError, match="actions"):
        check_policy_fits_env(load_zoo("reddoors-train"), _five_actions())


def _five_actions():
    import gymnasium as gym

    class Five(gym.Env):
        observation_space = gym.spaces.Box(0, 1, (9, 7, 7), np.float32)
        action_space = gym.spaces.Discrete(5)

    return Five()


def test_a_trained_cartpole_zip_loads_safely(tmp_path: Path) -> None:
    """Bounds that differ per element are read from the printed arrays."""
    model = train_ppo(
        "CartPole-v1",
        split=None,
        total_timesteps=128,
        seed=0,
        n_envs=1,
        progress_bar=False,
        ppo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1},
        save_path=tmp_path / "cp",
    )
    safe = load_ppo(tmp_path / "cp.zip")
    np.testing.assert_allclose(safe.observation_space.low, model.observation_space.low)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_array_equal(_probs(safe, obs), _probs(model, obs))


def test_zoo_errors_are_zoo_errors(tmp_path: Path, monkeypatch) -> None:
    from behavioral import zoo

    diverse = ZOO["reddoors-diverse"].path
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    (tmp_path / "reddoors-train.zip").write_bytes(b"junk")
    with pytest.raises(ZooFileError, match="reddoors-train"):
        load_zoo("reddoors-train")
    shutil.copy(diverse, tmp_path / "reddoors-train.zip")
    with pytest.raises(ZooFileError, match="trained with"):
        load_zoo("reddoors-train")


def test_an_audit_of_a_minigrid_zoo_policy_on_the_bare_env_says_which_wrapper() -> None:
    """The corner zoo was trained on flattened observations; handed the env's own Dict
    observations, the audit stops before rolling out, with the wrapper to use -- not an
    assertion error from inside stable-baselines3."""
    import gymnasium as gym

    import behavioral

    env = gym.make("behavioral/MiniGridCorner-v0", split="deploy")
    with pytest.raises(PolicyEnvMismatchError, match=r"flat_observations\(env\)") as info:
        behavioral.audit(load_zoo("minigrid-corner1"), env, episodes=2, seed=0)
    assert "Dict" in str(info.value) and "\n" not in str(info.value)


def test_an_image_policy_fits_its_env_although_sb3_stores_its_space_channels_first() -> None:
    """SB3 transposes (H, W, C) uint8 images to (C, H, W) for its networks and stores that
    space in the model; ``predict`` transposes observations back, so the model fits."""
    import gymnasium as gym

    from behavioral.policies import check_policy_fits_env

    class Image(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, True, False, {}

    model = PPO("MlpPolicy", Image(), n_steps=8, batch_size=8, device="cpu")
    assert model.observation_space.shape == (3, 8, 8)
    check_policy_fits_env(model, Image())
    model.predict(Image().observation_space.sample())  # what an audit's rollout calls
    wrong = Image()
    wrong.observation_space = gym.spaces.Box(0, 255, (8, 8, 4), np.uint8)
    with pytest.raises(PolicyEnvMismatchError):
        check_policy_fits_env(model, wrong)
