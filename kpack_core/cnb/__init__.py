"""Cloud Native Buildpacks for builders: buildpack lookup in a ClusterStore status, builder metadata and labels, the
small layers a builder adds, builder image assembly, and pushing it with layers mounted rather than copied.

`lookup` resolves an order, `validation` checks it against the stack and lifecycle, `assemble` makes the image,
`save` pushes it; `images` reads the build and lifecycle images. Errors (`errors`) name what is at fault.
"""

from kpack_core.cnb.assemble import BuilderImage, StackInputs, assemble_builder
from kpack_core.cnb.errors import (
    BuilderError,
    BuildpackCycleError,
    BuildpackNotFoundError,
    InvalidBuildpackVersionError,
    InvalidStoreBuildpackError,
    LifecycleImageError,
    LifecycleNotConfiguredError,
    MissingMixinsError,
    StackImageError,
    StackNotSupportedError,
    UnsupportedBuildpackApiError,
    UnsupportedPlatformApiError,
)
from kpack_core.cnb.images import LifecycleImage, RemoteImage, RemoteLayer, read_image
from kpack_core.cnb.lookup import ResolvedBuildpacks, StoreIndex, order_from_entries, resolve_order, sort_layers
from kpack_core.cnb.metadata import (
    BUILDER_METADATA_LABEL,
    BUILDPACK_LAYERS_LABEL,
    BUILDPACK_ORDER_LABEL,
    LIFECYCLE_APIS_LABEL,
    LIFECYCLE_METADATA_LABEL,
    LIFECYCLE_VERSION_LABEL,
    BuildpackLayer,
    LifecycleMetadata,
    Order,
    OrderRef,
    StackSupport,
    order_json,
)
from kpack_core.cnb.save import BlobFetcher, SaveResult, save_image

__all__ = [
    "BUILDER_METADATA_LABEL",
    "BUILDPACK_LAYERS_LABEL",
    "BUILDPACK_ORDER_LABEL",
    "LIFECYCLE_APIS_LABEL",
    "LIFECYCLE_METADATA_LABEL",
    "LIFECYCLE_VERSION_LABEL",
    "BlobFetcher",
    "BuilderError",
    "BuilderImage",
    "BuildpackCycleError",
    "BuildpackLayer",
    "BuildpackNotFoundError",
    "InvalidBuildpackVersionError",
    "InvalidStoreBuildpackError",
    "LifecycleImage",
    "LifecycleImageError",
    "LifecycleMetadata",
    "LifecycleNotConfiguredError",
    "MissingMixinsError",
    "Order",
    "OrderRef",
    "RemoteImage",
    "RemoteLayer",
    "ResolvedBuildpacks",
    "SaveResult",
    "StackImageError",
    "StackInputs",
    "StackNotSupportedError",
    "StackSupport",
    "StoreIndex",
    "UnsupportedBuildpackApiError",
    "UnsupportedPlatformApiError",
    "assemble_builder",
    "order_from_entries",
    "order_json",
    "read_image",
    "resolve_order",
    "save_image",
    "sort_layers",
]
