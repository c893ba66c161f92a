"""The engine: runs requests in its own namespace (see :mod:`par.engine.app`)."""
