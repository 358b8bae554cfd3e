"""Numba's vector width: 512 bits where the CPU has AVX-512 (nanosim._numba_target)."""

import json
import os
import subprocess
import sys

import pytest

from nanosim import _numba_target as T


def _fresh(monkeypatch, avx512=True):
    """As if numba were not imported yet, on a CPU with or without AVX-512."""
    monkeypatch.delitem(sys.modules, "numba", raising=False)
    monkeypatch.setitem(T.STATE, "vector_bits", T.STATE["vector_bits"])  # restored afterwards
    monkeypatch.setattr(T, "_has_avx512", lambda: avx512)


def test_sets_the_host_features_without_the_256_bit_preference(monkeypatch):
    import llvmlite.binding as ll

    _fresh(monkeypatch)
    env = {}
    assert T.configure(env) == "512 (set by nanosim)"
    assert env["NUMBA_CPU_FEATURES"] == ll.get_host_cpu_features().flatten() + ",-prefer-256-bit"
    assert T.STATE["vector_bits"] == "512 (set by nanosim)"


@pytest.mark.parametrize("env, expected", [
    ({"NUMBA_CPU_FEATURES": "+avx2"}, "set by the user"),
    ({"NUMBA_CPU_NAME": "generic"}, "set by the user"),
    ({T.ENV: "native"}, "native"),
    ({T.ENV: " Native "}, "native"),
])
def test_leaves_an_explicit_choice_alone(monkeypatch, env, expected):
    _fresh(monkeypatch)
    before = dict(env)
    assert T.configure(env).startswith(expected)
    assert env == before


def test_a_child_process_that_inherits_the_setting_reports_it(monkeypatch):
    _fresh(monkeypatch)
    env = {}
    T.configure(env)
    child = dict(env)
    assert T.configure(child) == "512 (set by nanosim)"
    assert child == env


def test_no_avx512_changes_nothing(monkeypatch):
    _fresh(monkeypatch, avx512=False)
    env = {}
    assert T.configure(env) == "native (no AVX-512)"
    assert env == {}


def test_after_numba_is_imported_it_is_too_late(monkeypatch):
    import numba  # noqa: F401 - the point of the test

    monkeypatch.setattr(T, "_has_avx512", lambda: True)
    monkeypatch.setitem(T.STATE, "vector_bits", T.STATE["vector_bits"])
    env = {}
    assert T.configure(env) == "too late (numba imported first)"
    assert env == {}


def test_an_unknown_setting_warns_and_changes_nothing(monkeypatch):
    _fresh(monkeypatch)
    env = {T.ENV: "1024"}
    with pytest.warns(UserWarning, match="NANOSIM_NUMBA_VECTOR_BITS='1024' is neither"):
        assert T.configure(env) == "native (unknown setting)"
    assert env == {T.ENV: "1024"}


_PROBE = """
import json, nanosim, numba
from nanosim import _numba_target as T
from numba.core import registry
print(json.dumps({"state": T.STATE["vector_bits"],
                  "features": registry.cpu_target.target_context.codegen()._tm_features}))
"""


@pytest.mark.parametrize("setting", ["512", "native"])
def test_numba_compiles_with_the_setting_in_a_fresh_process(setting):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    env[T.ENV] = setting
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout
    got = json.loads(out)
    wide = setting == "512" and T._has_avx512()
    assert got["state"] == ("512 (set by nanosim)" if wide else
                            "native" if setting == "native" else "native (no AVX-512)")
    assert got["features"].endswith(",-prefer-256-bit") == wide
