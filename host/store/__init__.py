"""The database: opening it (SQLite through sqlite-utils, or PostgreSQL), its migrations, and the
backend-specific tools (PostgreSQL's COPY). The rest of the host reaches a backend only through here."""
