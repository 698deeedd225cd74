"""kpack_webhooks: the HTTPS server for conversion, defaulting and validation of the kpack.io kinds.

Built on kpack_core only. `handlers` is the interface per kind (`KindHandlers`, `KindInfo`, `Registry`) and `kinds`
the registry of the kpack kinds; `reviews` answers ConversionReview and AdmissionReview bodies (with `jsonpatch`);
`server` serves them over TLS with controller-runtime's webhook `metrics`; `certificates` keeps the CA and serving
certificate in a Secret, renews them and injects the CA bundle; `registration` builds the webhook configurations and
CRD conversion stanzas, which `install` applies in local mode. `python -m kpack_webhooks` runs it all.
"""
