"""par-tui: ``par monitor``, a live terminal view of a cluster."""
