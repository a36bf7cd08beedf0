"""The sequential specification of one allocation's reference count (DESIGN.md section 5).

State encoding: n >= 1 is Live(n) (n references, raw counter n - 1), DEAD is 0, SAT is -1.
Every rule that reasons about what the counter should be (linearizability, the end state) asks
this module; a configuration that changes the get or put algorithm changes this module only.
"""

from __future__ import annotations

from typing import Final

# Final: the compiled build reads these as C constants, not as module attributes looked up by name.
MAXREF: Final = 0x7FFFFFFF
SAT_LO: Final = 0x80000000
RELEASED: Final = 0xC0000000

DEAD: Final = 0
SAT: Final = -1

NO_WARNING: Final[frozenset[str]] = frozenset()
W_SATURATED: Final = frozenset(("saturated",))
W_IMBALANCED: Final = frozenset(("imbalanced_put",))
W_DISABLED: Final = frozenset(("vma_get_disabled",))

KERNEL_NAME: Final = {"get": "vma_get", "put": "vma_put", "init": "vma_rcuref_init"}


def spec_step(state: int, fn: str) -> tuple[int, bool, frozenset[str]]:
    """One rcuref operation on the sequential spec: returns (new_state, result, warnings)."""
    if fn == "get":
        if state == DEAD:
            return DEAD, False, NO_WARNING
        if state == SAT or state - 1 == MAXREF:
            return SAT, True, W_SATURATED
        return state + 1, True, NO_WARNING
    if state == DEAD:
        return DEAD, False, W_IMBALANCED
    if state == SAT:
        return SAT, False, NO_WARNING
    if state == 1:
        return DEAD, True, NO_WARNING
    return state - 1, False, NO_WARNING


def _get_add_result(state: int, fn: str) -> tuple[int, bool, frozenset[str]]:
    """`get=add_result` (file_ref_get, `!atomic_long_add_negative(1)`): the add's own sign
    decides.  A get that would take MAXREF + 1 references into the saturation zone fails without
    a warning, and its stray increment is never undone: the object leaks like a saturated one."""
    if fn != "get":
        return spec_step(state, fn)
    if state == DEAD:
        return DEAD, False, NO_WARNING
    if state == SAT or state - 1 == MAXREF:
        return SAT, False, NO_WARNING
    return state + 1, True, NO_WARNING


def _get_inc_not_zero(state: int, fn: str) -> tuple[int, bool, frozenset[str]]:
    """`get=inc_not_zero` (vm_refcnt's `__refcount_inc_not_zero_limited_acquire`): no reference
    from zero references, none past the limit, and a failed get leaves the count as it was."""
    if fn != "get":
        return spec_step(state, fn)
    if state == DEAD or state == SAT or state - 1 == MAXREF:
        return state, False, NO_WARNING
    return state + 1, True, NO_WARNING


class Spec:
    """The sequential specification of one configuration's rcuref operations: `step` is one of
    the functions above.  A class rather than the function itself, so that the compiled build
    calls it natively (a call through a function-valued variable goes through the interpreter's
    calling convention, boxing every argument and result)."""

    def step(self, state: int, fn: str) -> tuple[int, bool, frozenset[str]]:
        return spec_step(state, fn)


class _AddResultSpec(Spec):
    def step(self, state: int, fn: str) -> tuple[int, bool, frozenset[str]]:
        return _get_add_result(state, fn)


class _IncNotZeroSpec(Spec):
    def step(self, state: int, fn: str) -> tuple[int, bool, frozenset[str]]:
        return _get_inc_not_zero(state, fn)


# The `get=` configuration key: which algorithm vma_get uses, and so which specification holds.
GET_SPECS: Final[dict[str, Spec]] = {"rcuref": Spec(), "add_result": _AddResultSpec(), "inc_not_zero": _IncNotZeroSpec()}


def spec_for(config: dict) -> Spec:
    """The sequential specification of a configuration's rcuref operations."""
    return GET_SPECS[config.get("get", "rcuref")]


def state_from_counter(c: int) -> int:
    """Spec state of a raw counter value (setup presets)."""
    c &= 0xFFFFFFFF
    if c <= MAXREF:
        return c + 1
    if c < RELEASED:
        return SAT
    return DEAD


def state_name(state) -> str:
    if state is None:
        return "uninitialised"
    if state == DEAD:
        return "DEAD"
    if state == SAT:
        return "SATURATED"
    return f"{state} reference{'s' if state != 1 else ''} (counter {state - 1:#x})"


def disabled_get(debug_vm: bool):
    """CONFIG_VMA_REF=n: there is no counter; vma_get returns NULL and, with CONFIG_DEBUG_VM,
    warns. Returns (result, warnings)."""
    return False, (W_DISABLED if debug_vm else NO_WARNING)
