"""The database: ``api`` (the Store interface, its errors), ``db`` (opening one, the backend chosen
once), one adapter per backend (``sqlite``, ``pg``), migrations, backups and copies (``maintenance``, ``pg_copy``)."""
