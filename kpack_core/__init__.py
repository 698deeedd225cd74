"""kpack_core: the library every kpack-py component stands on.

It holds the controller runtime, the API types, the registry, cosign and source clients, and envtest, the
real local control plane used by tests and local runs. It knows nothing of specific controllers or webhooks.
"""
