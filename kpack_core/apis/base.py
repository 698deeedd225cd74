"""Conventions every API model follows, and the Kubernetes types the kpack API embeds.

- Field names are Python snake_case with the JSON (camelCase) name as alias; objects are read from and written to
  JSON by alias. Field docstrings (`Field(description=...)`) become the CRD schema descriptions.
- Unknown fields are refused (`extra="forbid"`): the webhook names the field instead of silently dropping it.
- `to_json` writes only fields that were set (given, or set by defaulting), so reading and writing an object never
  invents fields, which keeps conversions lossless and patches small.
- Kubernetes core types the API embeds (EnvVar, ResourceRequirements, Affinity, Toleration, ...) are kept as JSON
  objects, validated by the apiserver's own rules when pods are made, and marked `x-kubernetes-preserve-unknown-fields`
  in the CRD schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

JSON = dict[str, Any]

GROUP = "kpack.io"
V1ALPHA1 = "v1alpha1"
V1ALPHA2 = "v1alpha2"
HUB_VERSION = V1ALPHA2


class ApiModel(BaseModel):
    """Base of every API model: camelCase JSON by alias, unknown fields refused, assignment validated."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )

    def to_json(self) -> JSON:
        """The JSON object, with only the fields that were set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        """Parse a JSON object (raises pydantic.ValidationError, which `errors.from_pydantic` turns into field
        errors)."""
        return cls.model_validate(data)


def kube_object(description: str) -> Any:
    """An embedded Kubernetes core type kept as a JSON object (see module docstring)."""
    return Annotated[
        JSON,
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": description}),
    ]


EnvVar = kube_object("A core/v1 EnvVar: name, and value or valueFrom.")
ResourceRequirements = kube_object("core/v1 ResourceRequirements: limits and requests.")
Toleration = kube_object("A core/v1 Toleration.")
Affinity = kube_object("core/v1 Affinity: nodeAffinity, podAffinity, podAntiAffinity.")
ContainerState = kube_object("A core/v1 ContainerState: waiting, running or terminated.")
Quantity = Annotated[
    str | int | float,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "description": "A Kubernetes resource quantity, e.g. 2G or 500Mi.",
        }
    ),
]
ObjectMeta = Annotated[
    JSON,
    WithJsonSchema({"type": "object", "description": "Standard object metadata."}),
]


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: str = ""
    """Name of the referent."""


class ObjectReference(ApiModel):
    """A core/v1 ObjectReference."""

    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    api_version: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class Condition(ApiModel):
    """A Kubernetes-style condition (knative duck type)."""

    type: str
    """Type of condition: Ready, Succeeded, BuilderReady, ActivePolling."""
    status: str
    """True, False or Unknown."""
    severity: str | None = None
    """Error (empty), Warning or Info."""
    last_transition_time: str | None = None
    """When the condition last changed status (RFC 3339)."""
    reason: str | None = None
    """A one-word CamelCase reason for the condition's last transition."""
    message: str | None = None
    """A human-readable message with details about the transition."""


class Status(ApiModel):
    """Fields every kpack status carries."""

    observed_generation: int | None = None
    """The generation of the spec this status describes."""
    conditions: list[Condition] | None = None
    """The latest observations of the object's state."""


class KubeObjectModel(ApiModel):
    """Top-level fields of every kind; subclasses add `spec` and `status`."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=dict)
