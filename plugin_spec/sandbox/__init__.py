"""A base for channel sandboxes: real HTTP servers on 127.0.0.1 that behave like a channel's
API, for a plugin's tests, demos and benchmarks.

* :mod:`.server`: the threaded server, :class:`Reply`, lifecycle, hostile answers sent as-is;
* :mod:`.faults`: the fault switches (``Trigger``) and the answers they produce (trickle,
  endless body, huge body, cut body) plus the ``next_loop`` paging fault;
* :mod:`.api`: :class:`ApiSandbox`, routing, key check, keyset, offset and page-token
  paging, orders changed mid-download, request log, fault switches and the
  ``GET /_sandbox/`` index, so a new channel's sandbox declares only its routes and its data.
"""

from .faults import TRIGGERS, Trigger
from .server import Reply, SandboxServer, encode_json, run_in_foreground

__all__ = ["Reply", "SandboxServer", "TRIGGERS", "Trigger", "encode_json", "run_in_foreground"]
