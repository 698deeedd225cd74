"""The kpack.io/v1alpha2 API: the models, defaulting and validation of every kind."""
