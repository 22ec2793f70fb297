"""Tests of behavioral.environments: envs made from ids and kwargs that come from files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from behavioral.environments import (
    ENV_ID_PATTERN,
    accepts_split,
    check_env_id,
    check_env_kwargs,
    make_env,
)
from behavioral.errors import (
    BehavioralError,
    InvalidArgumentError,
    InvalidEnvIdError,
    UnknownEnvError,
)


def _payload(tmp_path: Path, name: str) -> Path:
    """A module whose import writes a marker file (what an attacker would ship)."""
    marker = tmp_path / f"{name}.ran"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    return marker


@pytest.mark.parametrize(
    "good",
    ["CartPole-v1", "behavioral/RedDoors-v0", "seals/CliffWorld7x4-v0", "MiniGrid-Empty-5x5-v0"],
)
def test_plain_ids_are_accepted(good: str) -> None:
    assert check_env_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "pwn:behavioral/RedDoors-v0",
        "pkg.payload:behavioral/RedDoors-v0",
        "os:system-v0",
        "behavioral/RedDoors",  # no version
        "../RedDoors-v0",
        "a/b/RedDoors-v0",
        "RedDoors-v0\n",
        "",
        " CartPole-v1",
        "x" * 300 + "-v0",
    ],
)
def test_ids_with_a_module_part_or_odd_characters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidEnvIdError):
        check_env_id(bad)
    assert not ENV_ID_PATTERN.match(bad)


def test_non_string_ids_are_refused() -> None:
    for bad in (None, 3, b"CartPole-v1", ["CartPole-v1"]):
        with pytest.raises(InvalidEnvIdError):
            check_env_id(bad)


def test_a_module_in_the_id_is_never_imported(tmp_path: Path, monkeypatch) -> None:
    # The threat is real: gymnasium imports the module named before ':'.
    marker = _payload(tmp_path, "gym_payload_demo")
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import gymnasium as gym\n"
    code += "try:\n    gym.make('gym_payload_demo:behavioral/RedDoors-v0')\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], check=False, timeout=120, capture_output=True)
    assert marker.exists()
    # make_env refuses it before gymnasium sees it.
    marker = _payload(tmp_path, "env_payload")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InvalidEnvIdError, match="module part"):
        make_env("env_payload:behavioral/RedDoors-v0")
    assert not marker.exists()


def test_unknown_ids_are_one_line_errors() -> None:
    with pytest.raises(UnknownEnvError, match="NoSuch") as info:
        make_env("behavioral/NoSuch-v0")
    assert "\n" not in str(info.value)
    with pytest.raises(UnknownEnvError, match="CliffWorld7x4"):  # gymnasium's "did you mean"
        make_env("seals/CliffWorld-v0")


def test_seals_namespace_is_imported_on_demand(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from behavioral.environments import make_env
        assert "seals" not in sys.modules
        env = make_env("seals/CliffWorld7x4-v0")
        print(type(env.unwrapped).__name__)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.stdout.strip() == "CliffWorldEnv", proc.stderr


def test_split_only_where_the_env_takes_it() -> None:
    assert accepts_split("behavioral/RedDoors-v0")
    assert not accepts_split("CartPole-v1")
    assert not accepts_split("FrozenLake-v1")
    make_env("CartPole-v1").close()
    make_env("FrozenLake-v1").close()
    with pytest.raises(InvalidArgumentError, match="has no splits"):
        make_env("CartPole-v1", split="deploy")
    env = make_env("behavioral/RedDoors-v0", split="deploy", kwargs={"size": 7, "split": "train"})
    assert env.unwrapped.split == "deploy" and env.unwrapped.size == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": [7]},
        {"size": {"py/object": "os.system"}},
        {"openness": float("nan")},
        {"max_episode_steps": 5},  # gym.make's option, not the env's
        {"bad key": 1},
        {3: 1},
    ],
)
def test_kwargs_must_be_json_scalars_under_keyword_names(kwargs) -> None:
    with pytest.raises(InvalidArgumentError):
        check_env_kwargs(kwargs)
    with pytest.raises(InvalidArgumentError):
        make_env("behavioral/RedDoors-v0", kwargs=kwargs)


def test_kwargs_the_env_refuses_are_library_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="refuses"):
        make_env("CartPole-v1", kwargs={"size": 7})
    with pytest.raises(BehavioralError, match="size must be <= 51"):
        make_env("behavioral/RedDoors-v0", kwargs={"size": 151})
    with pytest.raises(BehavioralError, match="size must be an int"):
        make_env("behavioral/RedDoors-v0", kwargs={"size": 7.0})
    with pytest.raises(InvalidArgumentError, match="mapping"):
        check_env_kwargs([("size", 7)])


def test_made_envs_are_ordinary_gym_envs() -> None:
    env = make_env("behavioral/WaterPlants-v0", split="deploy", kwargs={"max_steps": 9})
    assert isinstance(env, gym.Env)
    assert env.spec is not None and env.spec.kwargs["max_steps"] == 9
