"""procrastinate's schema and the host's bridge to it, installed once per database.

The bridge is one trigger on ``jobs``: whenever a row becomes Queued (inserted by
``jobs.enqueue``, put back by ``retry_later``, ``requeue_now`` or an orphan recovery) it defers
the procrastinate task ``cartplugin.run_job(job_id=...)`` scheduled at the row's ``run_after``,
inside the same transaction. A rollback therefore leaves neither the row nor the task, and no
code path of the host can forget to tell the engine. The task's ``queueing_lock`` is
``cartplugin:<company>:<kind>``, the host's one-pending-job-per-company-and-kind rule: while a
task for that pair waits (procrastinate status ``todo``) a second one is never inserted; the
waiting one is pointed at the new row instead. A row cancelled while Queued cancels its task.

``ensure`` is safe when several processes start at once (a transaction-scoped advisory lock)
and cheap when everything is in place.
"""

from __future__ import annotations

import psycopg
from procrastinate.schema import SchemaManager

from host.store import pg
from plugin_spec import pgurl

#: the procrastinate queue and task every host job runs as
QUEUE = "cartplugin"
TASK = "cartplugin.run_job"
#: pg_advisory_xact_lock key of the installation (any constant unique to this purpose)
_INSTALL_LOCK = 0x63617274_0001

BRIDGE_SQL = f"""
CREATE OR REPLACE FUNCTION cartplugin_defer_run_job(job_id bigint, company_id bigint, kind text,
                                                    job_priority integer, run_after text)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    lock_name text := 'cartplugin:' || company_id || ':' || kind;
    at timestamptz := run_after::timestamptz;
    found_id bigint;
BEGIN
    -- a task already waiting for this (company, kind): point it at this row, never a second one
    UPDATE procrastinate_jobs SET args = jsonb_build_object('job_id', job_id), scheduled_at = at,
           priority = job_priority
     WHERE queueing_lock = lock_name AND status = 'todo'
    RETURNING id INTO found_id;
    IF found_id IS NOT NULL THEN
        RETURN found_id;
    END IF;
    RETURN (SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
        '{QUEUE}', '{TASK}', job_priority, NULL, lock_name, jsonb_build_object('job_id', job_id), at
    )]::procrastinate_job_to_defer_v1[])));
END;
$$;

CREATE OR REPLACE FUNCTION cartplugin_jobs_to_engine() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'Queued' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'Queued'
                                  OR OLD.run_after IS DISTINCT FROM NEW.run_after) THEN
        PERFORM cartplugin_defer_run_job(NEW.id, NEW.company_id, NEW.kind, NEW.priority, NEW.run_after::text);
    ELSIF TG_OP = 'UPDATE' AND NEW.status = 'Cancelled' AND OLD.status = 'Queued' THEN
        PERFORM procrastinate_cancel_job_v1(p.id, false, false) FROM procrastinate_jobs p
          WHERE p.queueing_lock = 'cartplugin:' || NEW.company_id || ':' || NEW.kind AND p.status = 'todo'
            AND p.args->>'job_id' = NEW.id::text;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS cartplugin_jobs_to_engine ON jobs;
CREATE TRIGGER cartplugin_jobs_to_engine AFTER INSERT OR UPDATE OF status, run_after ON jobs
    FOR EACH ROW EXECUTE FUNCTION cartplugin_jobs_to_engine();

CREATE INDEX IF NOT EXISTS cartplugin_engine_job_id ON procrastinate_jobs (((args->>'job_id')::bigint))
    WHERE task_name = '{TASK}' AND status IN ('todo', 'doing');
"""


def installed(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AND EXISTS "
        "(SELECT 1 FROM pg_trigger WHERE tgname = 'cartplugin_jobs_to_engine')"
    ).fetchone()
    return bool(row and row[0])


def ensure(url: str) -> bool:
    """Install procrastinate's schema and the bridge when missing; True if anything was done.

    The host's own tables (``jobs``) must exist already: open the database through
    ``host.store.db.connect`` first, which migrates it.
    """
    with pgurl.connect(url, autocommit=True, **pg.connect_kwargs(url)) as conn:
        if installed(conn):
            return False
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_INSTALL_LOCK])
            if installed(conn):  # another process did it while we waited
                return False
            if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:  # type: ignore[index]
                conn.execute(SchemaManager.get_schema())
            conn.execute(BRIDGE_SQL)
    return True
