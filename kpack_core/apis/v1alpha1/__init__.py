"""The kpack.io/v1alpha1 API: the models, defaulting and validation of every kind."""
