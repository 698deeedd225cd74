"""The kpack API as data: pydantic models of every kind in `v1alpha1` and `v1alpha2`, their defaulting and
validation, conversion through the `v1alpha2` hub, and the registry of kinds the CRD generator and the webhooks
work from. Nothing here talks to a server."""
