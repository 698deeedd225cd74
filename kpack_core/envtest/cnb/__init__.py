"""Real Cloud Native Buildpacks images for tests: buildpackages, stack images and kpack's lifecycle image.

Everything is built from deterministic layers (`layer`, on the tar writer of `kpack_core.cnb.layers`, whose
`Entry`, `Layer` and `NORMALIZED_MTIME` are re-exported here) and pushed with our own `RegistryClient`, so a test can
stand up in an envtest registry what a ClusterStore, a ClusterStack and the lifecycle-image ConfigMap point at, and
compare what the controllers report with the digests and labels computed here. `seeds` stands up the images the
`config/samples/00-*` manifests name and rewrites manifests onto the test registry.
"""

from kpack_core.cnb.layers import NORMALIZED_MTIME, Entry, Layer
from kpack_core.envtest.cnb.buildpack import (
    BuildpackStack,
    GroupEntry,
    Order,
    ShellBuildpack,
    filler_bytes,
    order_json,
)
from kpack_core.envtest.cnb.buildpackage import (
    BUILDPACK_LAYERS_LABEL,
    BUILDPACKAGE_METADATA_LABEL,
    buildpack_layers,
    buildpackage_image,
    buildpackage_metadata,
    push_buildpackage,
)
from kpack_core.envtest.cnb.image import ImageBuild, assemble_image
from kpack_core.envtest.cnb.layer import (
    build_layer,
    build_layer_async,
    directory,
    executable,
    read_layer,
    regular_file,
)
from kpack_core.envtest.cnb.lifecycle import (
    LIFECYCLE_METADATA_LABEL,
    ApiVersions,
    LifecycleApis,
    lifecycle_image,
    lifecycle_metadata,
    push_lifecycle_image,
)
from kpack_core.envtest.cnb.seeds import (
    SEED_BUILDPACKAGES,
    SEED_REGISTRY,
    SEED_STACK_MIXINS,
    relocate,
    relocate_manifest,
    rewrite_image_references,
    seed_documents,
    seed_images,
    stand_up_seed_images,
)
from kpack_core.envtest.cnb.stack import (
    MIXINS_LABEL,
    STACK_ID_LABEL,
    StackImages,
    StackRole,
    push_stack_images,
    stack_image,
)

__all__ = [
    "BUILDPACKAGE_METADATA_LABEL",
    "BUILDPACK_LAYERS_LABEL",
    "LIFECYCLE_METADATA_LABEL",
    "MIXINS_LABEL",
    "NORMALIZED_MTIME",
    "SEED_BUILDPACKAGES",
    "SEED_REGISTRY",
    "SEED_STACK_MIXINS",
    "STACK_ID_LABEL",
    "ApiVersions",
    "BuildpackStack",
    "Entry",
    "GroupEntry",
    "ImageBuild",
    "Layer",
    "LifecycleApis",
    "Order",
    "ShellBuildpack",
    "StackImages",
    "StackRole",
    "assemble_image",
    "build_layer",
    "build_layer_async",
    "buildpack_layers",
    "buildpackage_image",
    "buildpackage_metadata",
    "directory",
    "executable",
    "filler_bytes",
    "lifecycle_image",
    "lifecycle_metadata",
    "order_json",
    "push_buildpackage",
    "push_lifecycle_image",
    "push_stack_images",
    "read_layer",
    "regular_file",
    "relocate",
    "relocate_manifest",
    "rewrite_image_references",
    "seed_documents",
    "seed_images",
    "stack_image",
    "stand_up_seed_images",
]
