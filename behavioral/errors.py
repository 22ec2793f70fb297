"""Exceptions raised by ``behavioral``.

Every error the library raises on bad input is a subclass of :class:`BehavioralError`
and of the closest built-in category (``ValueError``, ``KeyError``, ...), so callers can
catch either the specific class, the library's base class, or the built-in one.
"""

from __future__ import annotations


class BehavioralError(Exception):
    """Base class of every error ``behavioral`` raises on bad input."""


class InvalidModelError(BehavioralError, ValueError):
    """A tabular model is malformed (shapes, probabilities, NaNs, unknown base, ...)."""


class InvalidRewardError(BehavioralError, ValueError):
    """A reward or objective array has the wrong shape or non-finite entries."""


class InvalidPolicyError(BehavioralError, ValueError):
    """A tabular policy array is malformed (shape, negative entries, rows not summing to 1)."""


class InvalidDemonstrationError(BehavioralError, ValueError):
    """Demonstrations do not fit the model they are paired with."""


class InvalidDistributionError(BehavioralError, ValueError):
    """A probability distribution is malformed or does not fit the rewards or dynamics.

    Raised for EPIC coverage distributions over transitions (s, a, s') and for the
    canonicalisation distributions over states and actions: wrong shape, negative or
    non-finite entries, not summing to 1, or mass on transitions the dynamics forbid.
    """


class InvalidArgumentError(BehavioralError, ValueError):
    """A function argument is outside its documented range (β ≤ 0, ε ∉ [0, 1], episodes < 1, ...)."""


class UnknownObjectiveError(BehavioralError, KeyError):
    """An objective name is not among the objectives a model or env declares."""


class UnsupportedPolicyError(BehavioralError, TypeError):
    """An object cannot be used as a policy (no ``act``/``predict`` and not callable)."""


class InvalidActionError(BehavioralError, ValueError):
    """A policy returned an action outside the env's action space (or NaN, or a wrong type).

    Attributes:
        action: the offending value, as the policy returned it.
    """

    def __init__(self, message: str, action: object = None) -> None:
        super().__init__(message)
        self.action = action


class EnvContractError(BehavioralError, TypeError):
    """An env does not follow the environment contract (no ``tabular_model()`` /
    ``state_index()``, inconsistent ``info["objectives"]``, unsupported spaces, ...)."""


class ResourceLimitError(BehavioralError, ValueError):
    """An input asks for more memory or work than a documented limit allows; the message
    names the limit and how to raise it. Refused before the memory is spent."""


class DatasetError(BehavioralError, ValueError):
    """A trajectory dataset is invalid, unreadable, or does not match what was expected."""


class CorruptDatasetError(DatasetError):
    """A saved dataset is corrupt: truncated or unparsable files, checksum mismatch,
    missing or extra arrays, wrong dtypes or inconsistent lengths."""


class UnsafeDatasetError(CorruptDatasetError):
    """A saved dataset contains content that could execute code when decoded (pickled
    object arrays, jsonpickle tags); it is refused without decoding it."""


class DatasetVersionError(DatasetError):
    """A saved dataset has an unknown format or format version."""


class DatasetMismatchError(DatasetError):
    """A dataset does not match the env (id, level seeds, spaces) it is used with."""


class OutputError(BehavioralError, OSError):
    """An output target cannot be written: its parent is a file, it is not writable, or
    it is not something the library would replace (see :mod:`behavioral.files`)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output target exists (or appeared while the output was being written) and
    ``overwrite=True`` / ``--force`` was not given; nothing was changed."""


class OutputBusyError(OutputError):
    """Another process is writing the same output target right now (it holds the
    target's lock); nothing was changed."""


class DatasetExistsError(OutputExistsError):
    """Saving a dataset would overwrite an existing one (pass ``overwrite=True``)."""


class DatasetTooLargeError(DatasetError, ResourceLimitError):
    """A saved dataset declares (or holds) more data than the documented limit
    (``behavioral.rollout.MAX_DATASET_BYTES``, raised with ``load_dataset(...,
    max_bytes=...)`` or the CLI's ``--max-dataset-bytes``); refused before decompressing."""


class DatasetNotFoundError(BehavioralError, FileNotFoundError):
    """No dataset directory (or no metadata file) at the given path."""


class UnknownEnvError(BehavioralError, KeyError):
    """An env id is not registered (or the env cannot be made from it)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class InvalidEnvIdError(BehavioralError, ValueError):
    """An env id is not of the form ``Name-vN`` or ``namespace/Name-vN``. Ids with a module
    part (``module:Name-vN``) are refused: gymnasium would import that module, so an id read
    from a file could run code."""


class PolicyFileError(BehavioralError, ValueError):
    """A policy file is not a readable stable-baselines3 PPO zip (missing members,
    malformed ``data``, weights that do not fit the network, above the size limit)."""


class UnsafePolicyError(PolicyFileError):
    """A policy zip can only be restored by unpickling parts of it (custom classes,
    functions, or pickled weights); refused unless the file is explicitly trusted
    (``load_ppo(..., trusted=True)``, CLI ``--trust-policy-file``)."""


class PolicyEnvMismatchError(BehavioralError, ValueError):
    """A policy's observation or action space does not fit the env it is run in."""


class UnknownZooEntryError(BehavioralError, KeyError):
    """No policy of that name in the zoo (``behavioral.zoo.ZOO``)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class ZooFileError(BehavioralError, OSError):
    """A zoo entry's zip is missing from the package, or its saved metadata (env id,
    split, env kwargs) is not the entry's."""
