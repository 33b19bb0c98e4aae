"""Pins the public names of the velox core so that a change to them is a deliberate one."""

from __future__ import annotations

import doctest
import importlib
import inspect
from types import ModuleType

import pytest

PUBLIC = {
    "velox.posterior": [
        "MAX_ABS_REWARD",
        "REFRESH_EVERY",
        "UserPosterior",
        "closed_form_mean",
    ],
    "velox.packed": ["pack_upper", "packed_diagonal", "packed_upper_index", "unpack_upper"],
    "velox.precision_floor": ["carried_floor", "certified_floor", "factorises"],
    "velox.state_codec": [
        "FORMAT_VERSION",
        "MAGIC",
        "decode_state",
        "encode_state",
        "encoded_size",
    ],
    "velox.scoring": ["score_items", "score_many", "score_rows", "top_k", "top_k_rows"],
    "velox.policies": [
        "Eligibility",
        "EpsilonGreedy",
        "Greedy",
        "LinUCB",
        "Policy",
        "Selection",
        "SelectionRequest",
        "ThompsonSampling",
        "make_policy",
    ],
    "velox.filters": [
        "MAX_DEPTH",
        "MAX_LENGTH",
        "Column",
        "ColumnKind",
        "CompiledFilter",
        "FilterCache",
        "ItemColumns",
        "ListColumn",
        "compile_filter",
    ],
}

POSTERIOR_MEMBERS = {
    "prior",
    "from_precision",
    "recentred",
    "dim",
    "lam",
    "noise_std",
    "count",
    "precision_floor",
    "update",
    "refresh",
    "mean",
    "std",
    "sample",
    "cov_factor",
    "precision",
    "statistic_b",
    "packed_parts",
    "copy",
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


def test_user_posterior_members() -> None:
    from velox.posterior import UserPosterior

    public = {name for name in vars(UserPosterior) if not name.startswith("_")}
    assert public == POSTERIOR_MEMBERS


def _modules() -> list[ModuleType]:
    names = [
        "velox.posterior",
        "velox.packed",
        "velox.precision_floor",
        "velox.scoring",
        "velox.policies",
        "velox.policies.greedy",
        "velox.filters",
    ]
    return [importlib.import_module(name) for name in names]


@pytest.mark.parametrize("module", _modules(), ids=lambda module: module.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
