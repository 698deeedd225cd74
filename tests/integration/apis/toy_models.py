"""A small two-version kind that exercises every schema shape the CRD generator must make structural."""

from __future__ import annotations

from typing import Literal

from kpack_core.apis.base import ApiModel, EnvVar, KubeObjectModel, LocalObjectReference, Quantity, Status


class Cache(ApiModel):
    """Where the cache lives."""

    size: Quantity | None = None
    """How big the cache volume is."""
    tags: list[str] | None = None
    """Extra tags."""


class GadgetSpec(ApiModel):
    tag: str
    """The image tag to build."""
    mode: Literal["None", "BuildNumber"] | None = None
    """How to tag."""
    cache: Cache | None = None
    """The build cache."""
    env: list[EnvVar] | None = None
    """Environment for the build."""
    node_selector: dict[str, str] | None = None
    """Pod node selector."""
    limit: int | None = None
    """A history limit."""
    secret: LocalObjectReference | None = None
    """A secret in the same namespace."""
    enabled: bool | None = None
    """Whether it is on."""


class GadgetStatus(Status):
    latest_image: str | None = None
    """The last image built."""


class Gadget(KubeObjectModel):
    spec: GadgetSpec
    """What the gadget should be."""
    status: GadgetStatus | None = None
    """What the gadget is."""


class OldGadget(KubeObjectModel):
    spec: GadgetSpec
    """What the gadget should be (old version)."""
    status: GadgetStatus | None = None
    """What the gadget is."""
