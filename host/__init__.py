"""cartplugin host: companies, orders and Queued Jobs in SQLite; channels are pluggy plugins."""

import logging

# Records go nowhere unless the CLI's --log-level (or the embedding program) configures logging;
# without this, Python's last-resort handler would print every warning to stderr.
logging.getLogger("cartplugin").addHandler(logging.NullHandler())
