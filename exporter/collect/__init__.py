"""Collection: which applications to list, each listing's window, the inventory of known objects and
what to refresh next, the worker pool and its deadline, one pass over a target, and the runner. Knows
nothing of Prometheus or HTTP; imports ``aws``, ``config``, ``model`` and ``common``."""
