"""The ClusterStore controller: lists the buildpacks of a store's source images (spec §1.5).

`ClusterStoreReconciler` is the reconciler, `setup(manager)` wires it into a `Manager`; `buildpackages` holds the
pure label parsing and sorting. Credentials, image reads, retried failures and polling are shared with the
ClusterStack controller (`kpack_controllers.resolving`).
"""

from kpack_controllers.store.reconciler import CONTROLLER_NAME, ClusterStoreReconciler, setup

__all__ = ["CONTROLLER_NAME", "ClusterStoreReconciler", "setup"]
