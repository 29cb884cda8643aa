"""cartplugin host: companies, orders and Queued Jobs in SQLite; channels are pluggy plugins."""
