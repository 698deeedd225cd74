"""The one-pass conversion down (hub → v1alpha1) of one kind, compiled once from its moves and its v1alpha1 model
into a Python function.

`conversion.down` first asks the kind's `DownPlan` for the v1alpha1 body and what it lost. The plan answers for
the common object, whose losses are exactly the fields the v1alpha1 model has no home for, none of them next to a
move, and no move landing on a field that is already there; any other object (None from `run`) takes the exact
path, which converts back up and compares. Where the plan answers, its answer is what the exact path's first step
gives (`_moved`, then `keep_known`), key order included, so both paths agree on every object they both answer (the
property tests compare them on generated objects, valid or not).

Why generated code: converting is the webhook's hot path, and interpreting tables (which moves, which fields, which
nested models) costs more than the dict operations themselves. So, like `dataclasses` and `namedtuple`, the plan is
Python source written from the tables, with every key, path and field set a constant, the walk of the move paths
and of the model's nesting unrolled, and paths of lost fields known in advance. `DownPlan.source` shows it. The
generated function does, in order:

1. take: walks the dicts on the way to move sources and targets; a target already there ends the plan (None);
   each source's value is taken out of a copy of its dict, and a dict a move emptied goes, and so do the parents
   that this leaves empty (as `_moved` does). Nothing else is copied.
2. keep: `shapes.keep` unrolled: each object of a model is copied whole, its unknown fields removed and recorded
   as lost, the fields nesting a model walked (deeper or recursive models through `shapes.keep` itself).
3. checks the losses: one next to a move ends the plan; two or more are sorted in the object's order.
4. puts the taken values, in move order, each at the end of its (possibly new) parent, through `keep_value` when
   the field nests a model; a loss there is next to a move and ends the plan. Writing after keeping gives what
   keeping after writing gives, because of exactly that.
"""

from __future__ import annotations

import contextlib
import linecache
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kpack_core.apis.shapes import Path, Shape, in_object_order, keep, keep_value, shape_of

Dropped = list[tuple[Path, Any]]
Run = Callable[[dict[str, Any]], tuple[dict[str, Any], Dropped] | None]

INLINE_DEPTH = 4
"""Nested models are unrolled into the generated function this deep; deeper ones (and a model nesting itself) are
walked by `shapes.keep`."""


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


@dataclass(frozen=True, slots=True)
class DownPlan:
    """The compiled conversion down of one kind."""

    run: Run
    """The v1alpha1 body of a hub object (without `metadata`, which `down` writes) and what it lost, in the hub
    object's order; None when the exact path must answer. The hub object is not changed; the body shares with it
    the values it keeps as they are, every object of a model in it is new."""
    source: str
    """The generated source of `run`."""


@dataclass(frozen=True, slots=True)
class _Level:
    """One dict of the hub object on the way to move sources or targets."""

    targets: tuple[str, ...]
    """Move targets ending here: one already in the hub object ends the plan."""
    popped: tuple[tuple[str, int], ...]
    """Move sources ending here, with their move's index."""
    through: tuple[tuple[str, _Level], ...]
    """Keys on the way to sources or targets further down."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a move writes its value in the v1alpha1 object, and what the v1alpha1 model says about that place."""

    made: Path
    """The keys of the dicts on the way that are objects of a model, which `keep` made new: written in place."""
    shared: Path
    """The keys of the dicts on the way after those: inside a field kept whole, shared with the input, so copied
    before writing into them."""
    key: str
    field: tuple[Shape | None, Shape | None] | None
    """The target field's (nested, list item) shapes; None when the v1alpha1 model has no home for it or for a
    dict on the way (`keep` would drop it, next to the move: the exact path answers)."""


@dataclass(frozen=True, slots=True)
class _Nearness:
    """What tells whether a lost field is next to a move: at or on the way to a move path, or inside one."""

    near: frozenset[Path]
    """Every move path (either end) and every path on the way to one."""
    ends: frozenset[Path]
    """Every move path: a lost field inside one of these is next to a move."""
    end_lengths: tuple[int, ...]
    """The lengths of the move paths, shortest first."""


def compile_down(moves: Sequence[tuple[Path, Path]], old_model: type[BaseModel]) -> DownPlan | None:
    """The plan for `moves` ((hub path, v1alpha1 path) pairs) into `old_model`; None for moves it does not
    compile, for which every object takes the exact path: one move path at or inside another, or a move through
    `metadata` (which the plan leaves to `down`)."""
    top = shape_of(old_model)
    ends = [path for move in moves for path in move]
    if "metadata" not in top.fields or any(path[0] == "metadata" for path in ends):
        return None
    if any(_overlaps(a, b) for i, a in enumerate(ends) for b in ends[i + 1 :]):
        return None
    tree: dict[str, Any] = {}
    for index, (source, target) in enumerate(moves):
        _branch(tree, source)[source[-1]] = index
        _branch(tree, target)[target[-1]] = None
    nearness = _Nearness(
        near=frozenset(path[:n] for path in ends for n in range(1, len(path) + 1)),
        ends=frozenset(ends),
        end_lengths=tuple(sorted({len(path) for path in ends})),
    )
    writer = _Writer(f"<down plan of {old_model.__module__}.{old_model.__qualname__}>")
    writer.write_run(_level(tree), top, [_target(top, target) for _, target in moves], nearness)
    return DownPlan(writer.compile(), writer.source())


def _overlaps(a: Path, b: Path) -> bool:
    """One path is the other or lies inside it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _branch(tree: dict[str, Any], path: Path) -> dict[str, Any]:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    return tree


def _level(tree: dict[str, Any]) -> _Level:
    return _Level(
        targets=tuple(key for key, value in tree.items() if value is None),
        popped=tuple((key, value) for key, value in tree.items() if isinstance(value, int)),
        through=tuple((key, _level(value)) for key, value in tree.items() if isinstance(value, dict)),
    )


def _target(top: Shape, path: Path) -> _Target:
    *parents, key = path
    shape: Shape | None = top
    made = len(parents)
    for depth, parent in enumerate(parents):
        if shape is None:
            break
        field = shape.fields.get(parent)
        if field is None:
            return _Target(path[:depth], path[depth:-1], key, None)
        shape = field[0]
        if shape is None:  # a field kept whole: this dict and everything in it are the input's
            made = depth
    return _Target(path[:made], path[made:-1], key, (None, None) if shape is None else shape.fields.get(key))


def _path_with(path: Path, name: str) -> str:
    """Source of the tuple `(*path, <name>)`, with `path` as constants."""
    return "(" + "".join(f"{key!r}, " for key in path) + f"{name},)"


class _Writer:
    """Writes the source of one plan's `run` and compiles it. Names: `o*` dicts of the hub object, `r*` their
    copies without the sources (None while unchanged), `t*` taken values, `k*` kept objects, `v*` field values,
    `c*` constants."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: list[str] = []
        self.depth = 0
        self.constants: dict[str, Any] = {}
        self.count = 0

    # -- plumbing

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    @contextlib.contextmanager
    def block(self, head: str) -> Iterator[None]:
        self.line(head)
        self.depth += 1
        start = len(self.lines)
        yield
        if len(self.lines) == start:
            self.line("pass")
        self.depth -= 1

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, value: Any) -> str:
        name = self.name("c")
        self.constants[name] = value
        return name

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"

    def compile(self) -> Run:
        source = self.source()
        namespace: dict[str, Any] = {
            **self.constants,
            "_ABSENT": _ABSENT,
            "keep": keep,
            "keep_value": keep_value,
            "in_object_order": in_object_order,
        }
        exec(compile(source, self.filename, "exec"), namespace)  # our own source, written from the tables
        linecache.cache[self.filename] = (len(source), None, source.splitlines(True), self.filename)  # tracebacks
        run: Run = namespace["run"]
        return run

    # -- the function

    def write_run(self, root: _Level, top: Shape, targets: list[_Target], nearness: _Nearness) -> None:
        taken = [f"t{index}" for index in range(len(targets))]
        with self.block("def run(hub):"):
            if taken:
                self.line(" = ".join(taken) + " = _ABSENT")
            changed = self.write_take(root, "hub", taken)
            moved = "hub" if changed is None else f"(hub if {changed} is None else {changed})"
            self.line(f"moved = {moved}")
            self.line("dropped = []")
            kept = self.write_keep(top, "moved", (), [top])
            self.line(f'{kept}.pop("metadata", None)')
            with self.block("if dropped:"):
                with self.block("for path, _ in dropped:"):
                    self.write_near_check("path", nearness)
                self.line("if len(dropped) > 1: dropped = in_object_order(hub, dropped)")
            for name, target in zip(taken, targets, strict=True):
                self.write_put(kept, name, target)
            self.line(f"return {kept}, dropped")

    def write_near_check(self, path: str, nearness: _Nearness) -> None:
        """Code ending the plan when the lost field at `path` is next to a move (`_Nearness`, unrolled)."""
        self.line(f"if {path} in {self.constant(nearness.near)}: return None")
        ends = self.constant(nearness.ends)
        for length in nearness.end_lengths:
            self.line(f"if len({path}) > {length} and {path}[:{length}] in {ends}: return None")

    def write_take(self, level: _Level, obj: str, taken: list[str]) -> str | None:
        """Code taking the sources out of the dict `obj`; the name of its copy (None while unchanged), or None
        when nothing under it is taken."""
        if level.targets:
            self.line(f"if {' or '.join(f'{key!r} in {obj}' for key in level.targets)}: return None")
        if not level.popped and not level.through:
            return None
        copy = self.name("r")
        self.line(f"{copy} = None")
        for key, index in level.popped:
            with self.block(f"if {key!r} in {obj}:"):
                self.line(f"if {copy} is None: {copy} = dict({obj})")
                self.line(f"{taken[index]} = {copy}.pop({key!r})")
        for key, below in level.through:
            child = self.name("o")
            self.line(f"{child} = {obj}.get({key!r})")
            with self.block(f"if type({child}) is dict:"):  # `_moved` goes through plain dicts only
                changed = self.write_take(below, child, taken)
                if changed is not None:
                    with self.block(f"if {changed} is not None:"):
                        self.line(f"if {copy} is None: {copy} = dict({obj})")
                        self.line(f"if {changed}: {copy}[{key!r}] = {changed}")
                        # Emptied by the moves: an empty `cache: {}` left behind would not round-trip.
                        self.line(f"else: del {copy}[{key!r}]")
            self.line(f"elif isinstance({child}, dict): return None")  # not parsed JSON: the exact path
        return copy

    def write_keep(self, shape: Shape, obj: str, path: Path, models: list[Shape], check_plain: bool = True) -> str:
        """Code for `keep(obj, shape, dropped, path)`; the name of the kept copy. `check_plain`: whether the object
        may hold plain fields only (else the caller checked)."""
        kept, keys = self.name("k"), self.name("ks")
        self.line(f"{kept} = dict({obj})")
        self.line(f"{keys} = {obj}.keys()")
        with self.block(f"if not {keys} <= {self.constant(shape.plain)}:") if check_plain else contextlib.nullcontext():
            known = self.constant(shape.known)
            with self.block(f"if not {keys} <= {known}:"), self.block(f"for key in {keys} - {known}:"):
                self.line(f"dropped.append(({_path_with(path, 'key')}, {kept}.pop(key)))")
            for key, nested, item in shape.walked:
                value, inner = self.name("v"), (*path, key)
                self.line(f"{value} = {kept}.get({key!r})")
                if nested is not None:
                    with self.block(f"if isinstance({value}, dict):"):
                        if len(models) < INLINE_DEPTH and nested not in models:
                            with self.block(f"if {value}.keys() <= {self.constant(nested.plain)}:"):
                                self.line(f"{kept}[{key!r}] = dict({value})")
                            with self.block("else:"):
                                walked = self.write_keep(nested, value, inner, [*models, nested], check_plain=False)
                                self.line(f"{kept}[{key!r}] = {walked}")
                        else:
                            self.line(f"{kept}[{key!r}] = keep({value}, {self.constant(nested)}, dropped, {inner!r})")
                if item is not None:
                    with self.block(f"{'elif' if nested is not None else 'if'} isinstance({value}, list):"):
                        items, plain, model = self.name("items"), self.constant(item.plain), self.constant(item)
                        self.line(f"{items} = []")  # a loop, not a comprehension: no function call
                        with self.block(f"for x in {value}:"):
                            self.line(
                                f"{items}.append((dict(x) if x.keys() <= {plain} else keep(x, {model}, None))"
                                " if isinstance(x, dict) else x)"
                            )
                        self.line(f"if {items} != {value}: dropped.append(({inner!r}, {value}))")
                        self.line(f"{kept}[{key!r}] = {items}")
        return kept

    def write_put(self, kept: str, value: str, target: _Target) -> None:
        """Code writing a taken value at its target (`_set_owned` on the kept object)."""
        with self.block(f"if {value} is not _ABSENT:"):
            if target.field is None:
                self.line("return None")
                return
            nested, item = target.field
            if nested is not None or item is not None:
                self.line("lost = []")
                self.line(f"{value} = keep_value({value}, {self.constant(target.field)}, lost)")
                self.line("if lost: return None")
            node = kept
            for key in target.made:
                child = self.name("n")
                self.line(f"{child} = {node}.get({key!r})")
                self.line(f"if not isinstance({child}, dict): {child} = {node}[{key!r}] = {{}}")
                node = child
            for key in target.shared:
                child = self.name("n")
                self.line(f"{child} = {node}.get({key!r})")
                self.line(f"{child} = {node}[{key!r}] = dict({child}) if isinstance({child}, dict) else {{}}")
                node = child
            self.line(f"{node}[{target.key!r}] = {value}")
