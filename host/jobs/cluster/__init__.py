"""Scale-out: Queued Jobs run by procrastinate on the host's own PostgreSQL database.

Used only when the host database is a ``postgresql://`` URL; on SQLite the worker runs its
``LocalPool`` as before. See ``docs/scale-out.md``.

* :mod:`.schema` installs procrastinate's tables and the trigger that turns every Queued row
  of ``jobs`` into a procrastinate job in the same transaction.
* :mod:`.engine` is the procrastinate app and its one task, ``cartplugin.run_job``.
* :mod:`.leader` runs the scheduler once per cluster (a PostgreSQL advisory lock).
* :mod:`.worker` is ``cartplugin worker`` on PostgreSQL.
"""

from __future__ import annotations

import os

#: a worker whose procrastinate heartbeat is older than this is presumed dead (it beats 3 times as
#: often); ``CARTPLUGIN_CLUSTER_STALLED_SECONDS`` changes it (tests, a slow network)
STALLED_WORKER_SECONDS = float(os.environ.get("CARTPLUGIN_CLUSTER_STALLED_SECONDS") or 30.0)
#: a Processing row with no live task is only given back once its own heartbeat is this old, so
#: a job run outside the engine (``cartplugin jobs run``) is never taken from under its runner
ORPHAN_AFTER_SECONDS = STALLED_WORKER_SECONDS
#: the heartbeats (procrastinate's worker, the host's running job) of every process on a
#: PostgreSQL database, cluster worker or not: three beats fit in the orphan window
HEARTBEAT_SECONDS = STALLED_WORKER_SECONDS / 3
