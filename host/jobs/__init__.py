"""The job machinery: the Queued Jobs table (``queue``), running one job (``runner``), the worker
loop and its schedule (``worker``), the local process pool (``pool``), and the cluster engine on PostgreSQL."""
