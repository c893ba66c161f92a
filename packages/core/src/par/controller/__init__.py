"""The controller: hub and schedulers of a cluster (see :mod:`par.controller.app`)."""
