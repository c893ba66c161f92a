"""The client side: Client, views and results, one role per module.

A call's way out and its reply's way back, module by module:

- ``client.py``: :class:`~par.client.client.Client`, the user's way in, which
  wires the parts below together (``records.py``: its methods on the
  controller's task records);
- ``view.py``, ``directview.py``, ``balancedview.py``: the views, and
  ``remotefunction.py``: functions bound to a view (``@remote``, ``@parallel``);
- ``submit.py`` builds a view's requests, ``paths.py`` picks each direct
  request's way, ``outbox.py`` sends them; ``queries.py`` asks the controller;
- ``io.py`` receives replies, output and events; ``ledger.py`` keeps the books
  every part shares (``history.py``: what a client or view remembers);
- ``asyncresult.py``: the results replies fill in (``hubresult.py``: from
  the controller's records); ``replies.py``: the reply
  and metadata types; ``outputs.py``, ``timing.py``, ``taskrecords.py``,
  ``partition.py``: what results and views compute from them.
"""
