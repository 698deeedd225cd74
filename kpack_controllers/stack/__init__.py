"""The ClusterStack controller: resolves a stack's build and run images to digests and checks them (spec §1.4).

`ClusterStackReconciler` is the reconciler, `setup(manager)` wires it into a `Manager`; `rules` holds the pure
stack checks and `resolving` what the ClusterStack and ClusterStore reconcilers share (credentials, image reads,
retried failures, polling).
"""

from kpack_controllers.stack.reconciler import CONTROLLER_NAME, ClusterStackReconciler, setup

__all__ = ["CONTROLLER_NAME", "ClusterStackReconciler", "setup"]
