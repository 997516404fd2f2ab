"""The safety layer: property-based tests of the guarantees the driver boundary relies on."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robot_irl.core.safety import SafetyLimits, UnsafeActionError, clamp_action

pytestmark = pytest.mark.unit

N = 4
NAMES = tuple(f"j{i}" for i in range(N))
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
vec = hnp.arrays(np.float64, (N,), elements=finite)


@st.composite
def limits(draw):
    lo = np.array(draw(st.lists(st.floats(-3, 0), min_size=N, max_size=N)))
    hi = lo + np.array(draw(st.lists(st.floats(0, 3), min_size=N, max_size=N)))
    step = draw(st.lists(st.floats(0, 1), min_size=N, max_size=N))
    ws_lo = lo[:3] + 0.25 * (hi[:3] - lo[:3])
    ws_hi = lo[:3] + 0.75 * (hi[:3] - lo[:3])
    return SafetyLimits(NAMES, tuple(lo), tuple(hi), max_step=tuple(step), workspace_low=tuple(ws_lo),
                        workspace_high=tuple(ws_hi))


def _inside(x, lim: SafetyLimits, tol=1e-12):
    ok = np.all(x >= np.array(lim.lower) - tol) and np.all(x <= np.array(lim.upper) + tol)
    ws = x[list(lim.workspace_dims)]
    return ok and np.all(ws >= np.array(lim.workspace_low) - tol) and np.all(ws <= np.array(lim.workspace_high) + tol)


@settings(max_examples=200, deadline=None)
@given(limits(), vec, st.data())
def test_result_is_inside_limits_and_within_one_step(lim, action, data):
    # a reference the robot may really be at: inside the bounds and the workspace box
    u = data.draw(hnp.arrays(np.float64, (N,), elements=st.floats(0, 1)))
    lo = np.array(lim.lower)
    hi = np.array(lim.upper)
    ref = lo + u * (hi - lo)
    idx = list(lim.workspace_dims)
    ref[idx] = np.array(lim.workspace_low) + u[idx] * (np.array(lim.workspace_high) - np.array(lim.workspace_low))
    out, mask = clamp_action(action, lim, ref)
    assert _inside(out, lim)
    assert np.all(np.abs(out - ref) <= np.array(lim.max_step) + 1e-9)
    assert np.array_equal(mask, out != action)


@settings(max_examples=200, deadline=None)
@given(limits(), vec, vec)
def test_step_limit_holds_even_from_outside_the_limits(lim, action, ref):
    # a robot outside its limits is walked back, never jumped
    out, _ = clamp_action(action, lim, ref)
    assert np.all(np.abs(out - ref) <= np.array(lim.max_step) + 1e-9)


@settings(max_examples=100, deadline=None)
@given(limits(), vec)
def test_clamping_is_idempotent(lim, action):
    once, _ = clamp_action(action, lim)
    twice, mask = clamp_action(once, lim)
    assert np.array_equal(once, twice) and not mask.any()


def test_safe_action_passes_unchanged():
    lim = SafetyLimits(NAMES, (-1,) * N, (1,) * N, max_step=(0.5,) * N)
    a = np.array([0.1, -0.2, 0.3, 0.0])
    out, mask = clamp_action(a, lim, np.zeros(N))
    assert np.array_equal(out, a) and not mask.any()


def test_velocity_limit_bounds_the_step():
    lim = SafetyLimits(NAMES, max_velocity=(1.0,) * N, dt=0.1, max_step=(0.5,) * N)
    out, _ = clamp_action(np.ones(N), lim, np.zeros(N))
    assert np.allclose(out, 0.1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_is_rejected_naming_the_joint(bad):
    lim = SafetyLimits(NAMES, (-1,) * N, (1,) * N)
    with pytest.raises(UnsafeActionError, match=r"j2="):
        clamp_action([0, 0, bad, 0], lim)


def test_wrong_shape_and_non_numeric_are_rejected():
    lim = SafetyLimits(NAMES)
    with pytest.raises(UnsafeActionError, match=r"expected shape \(4,\)"):
        clamp_action([0, 0, 0], lim)
    with pytest.raises(UnsafeActionError, match="not a numeric vector"):
        clamp_action(["a", "b", "c", "d"], lim)


def test_bad_reference_is_rejected():
    lim = SafetyLimits(NAMES, max_step=(0.1,) * N)
    with pytest.raises(UnsafeActionError, match="reference"):
        clamp_action(np.zeros(N), lim, [0, np.nan, 0, 0])


def test_inconsistent_limits_are_refused():
    with pytest.raises(ValueError, match="lower > upper"):
        SafetyLimits(("a",), (1.0,), (0.0,))
    with pytest.raises(ValueError, match="3 values"):
        SafetyLimits(("a", "b"), lower=(0, 0, 0))
    with pytest.raises(ValueError, match="go together"):
        SafetyLimits(NAMES, workspace_low=(0, 0, 0))
    with pytest.raises(ValueError, match=">= 0"):
        SafetyLimits(("a",), max_step=(-1.0,))
