"""The ``cartplugin`` command line: ``main`` holds the group and the everyday commands, each other
module one command group (``db``, ``plugins``, ``web``, ...); ``tables`` and ``terminal`` format output."""
