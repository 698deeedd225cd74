"""The controller-runtime-style core: API client, informers, workqueues, controllers and the manager.

Modules are named by the noun a reader looks for (`client`, `informer`, `workqueue`, `controller`, `manager`,
`leaderelection`, `metrics`, `events`, `log`); see docs/runtime.md for how to write a controller on them.
This package knows nothing of kpack's API types.
"""
