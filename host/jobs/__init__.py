"""The job machinery: the Queued Jobs table (``queue``), running one job (``runner``), what is due
(``scheduler``), the worker loop (``worker``), the local process pool (``pool``), procrastinate on PostgreSQL."""
