"""The native fast path of `/convert`: `kpack_webhooks._native` (Rust, in `native/`) built from the conversion's
own tables.

Reading a stored v1alpha2 object through v1alpha1 is the conversion the apiserver asks for most (every get, list
page and watch event of a v1alpha1 client). The native converter answers such a ConversionReview on its bytes: it
opens only the objects the conversion looks into and copies everything else from the request as it came, where the
Python path turns every object into dicts and back (most of its cost, and memory traffic that slows the rest of the
server down with it). It runs the same algorithm as `kpack_core.apis.downplan`, from the same tables: each kind's
moves and the field shapes of its v1alpha1 model.

It answers only what it can answer exactly as the Python path would: a well-formed review whose objects are all
kinds it knows, each passed through (already in the desired version) or converted down by the plan. For anything
else, a conversion up, an object the exact path must convert, any malformed input, it returns None and the Python
path (`reviews`) answers the whole review, messages included. Both are held to the same answers by the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kpack_core.apis.base import HUB_VERSION, V1ALPHA1
from kpack_core.apis.conversion import ANNOTATION, KindConversion
from kpack_core.apis.shapes import Shape, shape_of
from kpack_webhooks._native import ReviewConverter
from kpack_webhooks.handlers import KindInfo

ReviewAnswer = Callable[[bytes], bytes | None]
"""A whole ConversionReview's answer from its body, or None to leave the review to the handlers."""

ShapeTable = list[list[tuple[str, int | None, int | None]]]


def review_converter(kinds: Iterable[tuple[KindInfo, KindConversion]]) -> ReviewAnswer:
    """The native converter of these kinds (each converted through `/convert` by `conversion.convert`, the hub
    being v1alpha2); only kinds with a compiled plan down are converted, the others only passed through."""
    table = []
    for info, conversion in kinds:
        if not info.convert:
            continue
        plans = []
        if conversion.down_plan is not None and {HUB_VERSION, V1ALPHA1} <= set(info.versions):
            moves = [(list(hub), list(old)) for hub, old in conversion.down_moves]
            hub, old = f"{info.group}/{HUB_VERSION}", f"{info.group}/{V1ALPHA1}"
            plans.append((hub, old, moves, shape_table(shape_of(conversion.old_model))))
        table.append((info.group, info.kind, sorted(info.api_versions), plans))
    converter: ReviewAnswer = ReviewConverter(ANNOTATION, table).convert
    return converter


def shape_table(top: Shape) -> ShapeTable:
    """The shapes reachable from `top` (which comes first), each as its fields with the indexes of the shapes
    they nest: a model nesting itself refers to its own index."""
    index: dict[int, int] = {id(top): 0}
    order = [top]
    for shape in order:  # grows while walked: breadth first
        for nested, item in shape.fields.values():
            for found in (nested, item):
                if found is not None and id(found) not in index:
                    index[id(found)] = len(order)
                    order.append(found)
    return [
        [
            (name, None if nested is None else index[id(nested)], None if item is None else index[id(item)])
            for name, (nested, item) in shape.fields.items()
        ]
        for shape in order
    ]
