"""kpack_webhooks: the HTTPS server for conversion, defaulting and validation of the kpack.io kinds.

Built on kpack_core only; the handlers arrive with their issue.
"""
