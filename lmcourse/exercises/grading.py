"""The grading machinery behind `check`: a registry of exercises, and the helpers checkers use to call
the learner's code and compare its answer with the reference, saying how it differs but never what the
reference value is.

`call` runs the learner's code under a watch: inside `with forbidding(references...)` a call into one of them (the
package's or torch's version of what the exercise asks for) is Wrong, and so is a call into the checkers' own
modules. Checkers compute the expected value after `call` returns, from their own copies of the inputs."""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
import sys
import threading
import types
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class NotAnswered(Exception):
    """The learner's function is still the stub (raises NotImplementedError), or returns nothing (the message
    says so: a function whose body computes but forgets `return`)."""


class Wrong(Exception):
    """The answer differs from the reference on one case; the message says which case and how."""

    def __init__(self, case: str, how: str):
        super().__init__(f"case '{case}': {how}")
        self.case, self.how = case, how


@dataclass(frozen=True)
class Exercise:
    """One exercise: a stable id "NN.name", a title, its checker and hints in escalating order.

    `checker(answer, **context)` calls `answer` on its cases and raises Wrong or NotAnswered; it may return a
    note to print under the verdict (the project's score against its baselines).
    """

    id: str
    title: str
    checker: Callable[..., None]
    hints: tuple[str, ...]

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]


REGISTRY: dict[str, Exercise] = {}


def exercise(exercise_id: str, title: str, hints: list[str]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator registering a checker under `exercise_id` ("NN.name")."""
    chapter, _, name = exercise_id.partition(".")
    if not (len(chapter) == 2 and chapter.isdigit() and name.isidentifier()):
        raise ValueError(f"exercise_id must look like '04.masked_softmax', got {exercise_id!r}")
    if len(hints) < 2:
        raise ValueError(f"{exercise_id}: give at least two hints (a nudge, then more), got {len(hints)}")

    def register(checker: Callable[..., None]) -> Callable[..., None]:
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        REGISTRY[exercise_id] = Exercise(exercise_id, title, checker, tuple(hints))
        return checker

    return register


def generator(exercise_id: str, case: int = 0) -> torch.Generator:
    """A torch generator seeded from the exercise id: the same cases on every run (stable notebook outputs)."""
    return torch.Generator().manual_seed(zlib.crc32(exercise_id.encode()) + 7919 * case)


def rng(exercise_id: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(exercise_id.encode()))


# ------------------------------------------------------------------------------------------------
# Calling the learner's code

def call(case: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """fn(*args, **kwargs) on one case: NotImplementedError or None -> NotAnswered; an error -> Wrong; a call into
    a reference that `forbidding` refuses, or into the checker's own code, -> Wrong, whatever fn returns.

    The checker should build its expected value after this returns, from its own copies of the inputs: while fn
    runs, no frame or object holds the answer for fn to find, and fn mutating its arguments changes nothing."""
    watch = _Watch((fn, *args, *kwargs.values()))
    previous, previous_in_threads, failure = sys.getprofile(), threading.getprofile(), None
    threading.setprofile(watch)  # a thread the learner's code starts is watched too
    sys.setprofile(watch)
    try:
        out = fn(*args, **kwargs)
    except Exception as exc:  # judged below, after the watch is off
        failure = exc
    finally:
        kept_watching = sys.getprofile() is watch
        sys.setprofile(previous)
        threading.setprofile(previous_in_threads)
    if watch.found is not None:
        name, why = watch.found
        raise Wrong(case, f"your code calls {name}, {why}")
    if not kept_watching:
        raise Wrong(case, "your code replaced the checker's profiler (sys.setprofile); leave it as it is")
    if isinstance(failure, NotImplementedError):
        raise NotAnswered from None
    if isinstance(failure, (NotAnswered, Wrong)):
        raise failure
    if failure is not None:  # the learner's code failed: say how, on which case
        raise Wrong(case, f"your code raised {type(failure).__name__}: {failure}") from None
    if out is None:
        raise NotAnswered(f"on case '{case}' your function returned None: does it end with `return`?")
    if out is Ellipsis:
        raise NotAnswered
    return out


# ------------------------------------------------------------------------------------------------
# Refusing the reference: the package's or torch's version of what the learner is asked to write
#
# While `call` runs the learner's code it watches every call that code makes, with sys.setprofile: a Python
# frame whose code object is a forbidden function's (however it was reached: an alias, a subclass, a class's
# forward, a copy of the function) or a builtin that is forbidden ('c_call' events) marks the answer Wrong,
# whatever it returns. The checker's own modules (chNN.py) are always forbidden, except what the checker hands
# to the learner (a loss function, a model). A determined learner can still get round it (re-compile the
# reference's source, read it in a subprocess); the point is that the easy ways to cheat do not pass.

_CHECKER_FILES = frozenset(str(path) for path in Path(__file__).parent.glob("ch[0-9][0-9].py"))
_WHY = "the reference this exercise asks you to write"


@dataclass
class _Forbidden:
    """What `call` refuses: code objects (also matched by file, first line and qualified name, so a reloaded module
    still counts), whole source files and packages, builtins by identity, builtin methods by (class, name), and the dotted names
    of libraries not imported yet (`pending`: resolved once the learner's code imports them)."""

    why: str
    codes: dict[Any, str] = field(default_factory=dict)
    keys: dict[tuple[str, int, str], str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)  # a package's folder (ending in a separator) -> name
    builtins: dict[int, str] = field(default_factory=dict)
    methods: dict[str, list[tuple[type, str]]] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    kept: list[Any] = field(default_factory=list)  # the forbidden objects, alive, so that their ids stay theirs

    def add(self, reference: Any) -> None:
        if isinstance(reference, str) and reference.split(".")[0] not in sys.modules:
            self.pending.append(reference)  # importing an optional library here would cost seconds
            return
        resolved = _resolve(reference)
        if resolved is None:
            return
        obj, name = resolved
        self.kept.append(obj)
        if isinstance(obj, types.ModuleType):
            if getattr(obj, "__file__", None):
                self.files[obj.__file__] = name
            for folder in getattr(obj, "__path__", []):  # a package: every module in it
                self.packages[os.path.join(folder, "")] = name
        elif isinstance(obj, (types.MethodDescriptorType, types.WrapperDescriptorType)):
            owner = obj.__objclass__
            name = name if isinstance(reference, str) else f"{owner.__module__}.{owner.__qualname__}.{obj.__name__}"
            self.methods.setdefault(obj.__name__, []).append((owner, name))
        elif isinstance(obj, types.BuiltinFunctionType):
            self.builtins[id(obj)] = name
        else:
            for function in _functions(obj):
                code = function.__code__
                self.codes.setdefault(code, name)
                self.keys.setdefault((code.co_filename, code.co_firstlineno, code.co_qualname), name)

    def imported(self) -> None:
        """Resolve the pending names whose library has been imported since."""
        if self.pending:
            waiting, self.pending = self.pending, []
            for reference in waiting:
                self.add(reference)


_FORBIDDEN: list[_Forbidden] = []  # the stack of `forbidding` blocks now open
# Every way into autograd's backward pass (Tensor.backward, torch.autograd.backward/grad, torch.func) ends in the
# engine's run_backward: forbid these where the task says "by hand".
AUTOGRAD = ("torch.Tensor.backward", "torch.autograd.backward", "torch.autograd.grad",
            type(torch.autograd.Variable._execution_engine).run_backward)


def _resolve(reference: Any) -> tuple[Any, str] | None:
    """(object, display name) for a reference given as an object or a dotted name; None if it does not import."""
    if isinstance(reference, types.ModuleType):
        return reference, reference.__name__
    if not isinstance(reference, str):
        return reference, _public_name(reference)
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj, reference
    return None


def _public_name(obj: Any) -> str:
    """The shortest dotted name that reaches `obj`: torch.nn.GRUCell rather than torch.nn.modules.rnn.GRUCell."""
    module, qualname = getattr(obj, "__module__", None) or "", getattr(obj, "__qualname__", None)
    if not qualname:
        return repr(obj)
    parts = module.split(".")
    candidates = [".".join(parts[:i]) for i in range(1, len(parts) + 1)] + ["torch.nn.functional", "torch.nn", "torch"]
    reached = []
    for candidate in candidates:
        for path in {qualname, getattr(obj, "__name__", qualname)}:
            found = sys.modules.get(candidate)
            for attribute in path.split("."):
                found = getattr(found, attribute, None)
            if found is obj:
                reached.append(f"{candidate}.{path}")
    private = lambda name: any(part.startswith("_") for part in name.split("."))  # noqa: E731
    return min(reached, key=lambda name: (private(name), len(name)), default=f"{module}.{qualname}")


def _functions(obj: Any) -> list[types.FunctionType]:
    """The Python functions that running `obj` enters: a function (and what it wraps), a method, a class's own
    methods (so a subclass or an alias still runs them), a callable object's __call__."""
    if isinstance(obj, functools.partial):
        return _functions(obj.func)
    if isinstance(obj, (types.MethodType, staticmethod, classmethod)):
        return _functions(obj.__func__)
    if isinstance(obj, property):
        return [f for part in (obj.fget, obj.fset, obj.fdel) if part is not None for f in _functions(part)]
    if isinstance(obj, types.FunctionType) and hasattr(obj, "__wrapped__"):
        # A decorator's wrapper (torch.no_grad's, functools.cache's) is shared by every function it decorates:
        # forbid only the body it wraps, or a learner's function decorated the same way would be refused.
        return _functions(obj.__wrapped__)
    if isinstance(obj, types.FunctionType):
        return [obj]
    if isinstance(obj, type):
        return [f for member in vars(obj).values() for f in _functions(member)
                if isinstance(member, (types.FunctionType, staticmethod, classmethod, property))]
    call_method = getattr(type(obj), "__call__", None)
    return _functions(call_method) if isinstance(call_method, types.FunctionType) else []


@contextlib.contextmanager
def forbidding(*references: Any, why: str = _WHY) -> Iterator[None]:
    """Inside this block, `call` marks the learner's answer Wrong if its code calls any of `references`.

    references: objects or dotted names ("lmcourse.generate.top_p_filter", "torch.nn.GRUCell",
    "torch.nn.functional.scaled_dot_product_attention", "torch.Tensor.cumsum", a whole module or package); a name that does
    not import is skipped, and one of a library not imported yet (gensim, transformers) is resolved at the first
    `call` after the learner's code imports it. A class forbids its own methods, so subclasses and instances
    count; a builtin is matched by identity, a builtin method (torch.Tensor.cumsum) on any instance. Calls the
    checker itself makes inside the block (the reference it compares with) are not watched: only `call` is.
    The verdict reads: "your code calls <name>, <why>". Blocks nest; torch's internal use of a forbidden builtin
    (nn.MultiheadAttention calling scaled_dot_product_attention) counts, since the learner's code reached it.
    """
    forbidden = _Forbidden(why)
    for reference in references:
        forbidden.add(reference)
    _FORBIDDEN.append(forbidden)
    try:
        yield
    finally:
        _FORBIDDEN.remove(forbidden)


class _Watch:
    """The profiler `call` installs while the learner's code runs: it notes the first forbidden call it sees."""

    def __init__(self, given: tuple):
        self.given, self.allowed = given, None  # allowed: the checker's code handed to the learner, found lazily
        self.found: tuple[str, str] | None = None  # (name, why)
        self.codes, self.keys, self.files, self.packages, self.builtins, self.methods = {}, {}, {}, {}, {}, {}
        for forbidden in _FORBIDDEN:
            forbidden.imported()
            for mine, theirs in ((self.codes, forbidden.codes), (self.keys, forbidden.keys),
                                 (self.files, forbidden.files), (self.packages, forbidden.packages),
                                 (self.builtins, forbidden.builtins)):
                mine.update({k: (name, forbidden.why) for k, name in theirs.items() if k not in mine})
            for method, owners in forbidden.methods.items():
                self.methods.setdefault(method, []).extend((cls, name, forbidden.why) for cls, name in owners)
        self.key_files = {filename for filename, _, _ in self.keys}
        self.folders = tuple(self.packages)

    def __call__(self, frame, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            filename = code.co_filename
            if code in self.codes:
                self._found(self.codes[code])
            elif filename in self.key_files and (filename, code.co_firstlineno, code.co_qualname) in self.keys:
                self._found(self.keys[filename, code.co_firstlineno, code.co_qualname])
            elif filename in self.files:
                self._found(self.files[filename])
            elif self.folders and filename.startswith(self.folders):
                self._found(next(self.packages[f] for f in self.folders if filename.startswith(f)))
            elif filename in _CHECKER_FILES and not self._handed_over(frame):
                module = Path(filename).stem
                self._found((f"lmcourse.exercises.{module}.{code.co_qualname}", "the checker's own code"))
        elif event == "c_call":
            if id(arg) in self.builtins:
                self._found(self.builtins[id(arg)])
            elif (arg is sys.setprofile or arg is sys.getprofile) and frame.f_code is not call.__code__:
                self._found((f"sys.{arg.__name__}", "which meddles with the checker's watch"))
            elif self.methods and getattr(arg, "__name__", None) in self.methods:
                owner = getattr(arg, "__self__", None)
                for cls, name, why in self.methods[arg.__name__]:
                    if isinstance(owner, cls):
                        self._found((name, why))

    def _found(self, what: tuple[str, str]) -> None:
        if self.found is None:
            self.found = what
            sys.setprofile(None)  # one is enough; the rest of the learner's code runs at full speed

    def _handed_over(self, frame) -> bool:
        """Whether this checker code runs on behalf of something the checker handed to the learner."""
        if self.allowed is None:
            self.allowed = set()
            for obj in _flatten(self.given):
                self.allowed.update(f.__code__ for f in _functions(obj))
                if not isinstance(obj, type) and type(obj).__module__.startswith("lmcourse.exercises.ch"):
                    self.allowed.update(f.__code__ for cls in type(obj).__mro__ for f in _functions(cls))
        while frame is not None and frame.f_code.co_filename in _CHECKER_FILES:
            if frame.f_code in self.allowed:
                return True
            frame = frame.f_back
        return False


def _flatten(objs: tuple) -> Iterator[Any]:
    """The objects of a call's arguments, and one level into lists, tuples and dicts."""
    for obj in objs:
        yield obj
        if isinstance(obj, (list, tuple)):
            yield from obj
        elif isinstance(obj, dict):
            yield from obj.values()


# ------------------------------------------------------------------------------------------------
# Comparing an answer with the reference

def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def expect_pair(case: str, got: Any, names: str) -> tuple:
    """`got` if it is a 2-tuple, else Wrong saying what to return: names like "(out, weights)"."""
    if not isinstance(got, tuple) or len(got) != 2:
        raise Wrong(case, f"return a tuple {names}, got {type(got).__name__}")
    return got


def same_tensor(case: str, got: Any, want: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4,
                dtype: bool = True, what: str = "the output") -> None:
    """Raise Wrong unless `got` is a tensor like `want`: type, shape, dtype (if `dtype`), NaN and inf
    in the same places, and values within atol + rtol * |want|."""
    if not isinstance(got, torch.Tensor):
        raise Wrong(case, f"{what} is a {type(got).__name__}; return a torch.Tensor")
    if type(got) is not torch.Tensor:  # a subclass (a Parameter, or one that fakes its values): compare its data
        with torch._C.DisableTorchFunctionSubclass():
            got = got.as_subclass(torch.Tensor)
    if tuple(got.shape) != tuple(want.shape):
        raise Wrong(case, f"{what} has shape {tuple(got.shape)}, but it should have shape {tuple(want.shape)}")
    if dtype and got.dtype != want.dtype:
        raise Wrong(case, f"{what} has dtype {got.dtype}, but it should keep dtype {want.dtype}")
    if want.dtype == torch.bool or not (want.dtype.is_floating_point or got.dtype.is_floating_point):
        differ = (got.cpu() != want.cpu()).numpy()
        if differ.any():
            raise Wrong(case, f"{what} is wrong at {_where(differ)}")
        return
    same_array(case, _as_array(got), _as_array(want), atol, rtol, what)


def _where(bad: np.ndarray) -> str:
    """'N of M entries, e.g. at index (i, j)' for a boolean array of the entries that are wrong."""
    first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape))
    return f"{int(bad.sum())} of {bad.size} entries, e.g. at index {first}"


def same_array(case: str, got: np.ndarray, want: np.ndarray, atol: float, rtol: float,
               what: str = "the output") -> None:
    """The value part of `same_tensor` for float arrays: NaN, infinities, then values within atol + rtol |want|."""
    if got.shape != want.shape:
        raise Wrong(case, f"{what} has shape {got.shape}, but it should have shape {want.shape}")
    nan = np.isnan(got) & ~np.isnan(want)
    if nan.any():
        raise Wrong(case, f"{what} is NaN at {_where(nan)}")
    inf_got, inf_want = np.isinf(got), np.isinf(want)
    if (inf_got & ~inf_want).any():
        raise Wrong(case, f"{what} is infinite where a finite value belongs, at {_where(inf_got & ~inf_want)}")
    wrong_inf = inf_want & ((got != want) | ~inf_got)
    if wrong_inf.any():
        raise Wrong(case, f"{what} should be {'-inf' if want[wrong_inf].flat[0] < 0 else 'inf'} at {_where(wrong_inf)}")
    finite = ~inf_want & ~np.isnan(want)
    error, tolerance = np.abs(got - np.where(finite, want, 0)), atol + rtol * np.abs(np.where(finite, want, 0))
    off = finite & ~(error <= tolerance)
    if off.any():
        close = bool(np.all(error[finite] <= 10 * tolerance[finite] + 1e-2 * np.abs(want[finite])))
        near = " (close: check precision, or a small term you left out)" if close else ""
        raise Wrong(case, f"{what} has wrong values at {_where(off)}{near}")


def real_number(case: str, got: Any, what: str = "the result") -> float:
    """`got` as a float, or Wrong unless it is a real number (a Python/numpy number or a one-element tensor), not NaN."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.detach().item()
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        raise Wrong(case, f"{what} is a {type(got).__name__}; return a number (float)")
    if math.isnan(got):
        raise Wrong(case, f"{what} is NaN")
    return float(got)


def same_number(case: str, got: Any, want: float, rtol: float = 1e-6, atol: float = 1e-9, what: str = "the result") -> None:
    """Raise Wrong unless `got` is a real number within atol + rtol * |want| of `want` (not saying `want`)."""
    got = real_number(case, got, what)
    if math.isinf(got) != math.isinf(want) or (math.isinf(got) and got != want):
        raise Wrong(case, f"{what} is {'infinite' if math.isinf(got) else 'finite'}, which it should not be")
    if math.isinf(want):
        return
    error = abs(got - want)
    if error > atol + rtol * abs(want):
        near = " (close: within 1 %)" if error <= 1e-2 * abs(want) else ""
        raise Wrong(case, f"{what} is wrong{near}")


def same_value(case: str, got: Any, want: Any, what: str = "the result") -> None:
    """Exact equality for ints, strings, tuples of them (of plain types: an object that equals everything is not
    an answer)."""
    if not _plain_equal(got, want):
        shown = repr(got) if len(repr(got)) < 60 else type(got).__name__
        raise Wrong(case, f"{what} {shown} is not right")


def _plain_equal(got: Any, want: Any) -> bool:
    """got == want, compared as the checker's own types (str, int, tuple, list), never by got's own __eq__."""
    if isinstance(want, (tuple, list)):
        return (type(got) in (tuple, list) and len(got) == len(want)
                and all(_plain_equal(g, w) for g, w in zip(got, want)))
    if isinstance(want, str):
        return type(got) is str and str.__eq__(want, got)
    if isinstance(want, (int, np.integer)) and not isinstance(want, bool):
        return type(got) in (int, np.int64, np.int32) and int(want) == int(got)
    return type(got) is type(want) and want == got
