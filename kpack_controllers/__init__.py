"""kpack_controllers: the reconcilers for Image, Build, Builder, ClusterStack, ClusterStore, SourceResolver.

Built on kpack_core only; the reconcilers arrive with their issues.
"""
