"""par's test fixtures (``par_home``, ``par_cluster``) for every test of this plugin."""

pytest_plugins = ["par.testing"]
