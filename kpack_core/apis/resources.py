"""The kpack kinds as REST resources (`kpack_core.runtime.resource.Resource`) at the storage version, v1alpha2:
what controllers read, watch and write."""

from __future__ import annotations

from kpack_core.apis.base import GROUP, HUB_VERSION
from kpack_core.runtime.resource import Resource

IMAGES = Resource(GROUP, HUB_VERSION, "images", "Image")
BUILDS = Resource(GROUP, HUB_VERSION, "builds", "Build")
BUILDERS = Resource(GROUP, HUB_VERSION, "builders", "Builder")
CLUSTER_BUILDERS = Resource(GROUP, HUB_VERSION, "clusterbuilders", "ClusterBuilder", namespaced=False)
CLUSTER_STACKS = Resource(GROUP, HUB_VERSION, "clusterstacks", "ClusterStack", namespaced=False)
CLUSTER_STORES = Resource(GROUP, HUB_VERSION, "clusterstores", "ClusterStore", namespaced=False)
SOURCE_RESOLVERS = Resource(GROUP, HUB_VERSION, "sourceresolvers", "SourceResolver")

ALL = (IMAGES, BUILDS, BUILDERS, CLUSTER_BUILDERS, CLUSTER_STACKS, CLUSTER_STORES, SOURCE_RESOLVERS)
