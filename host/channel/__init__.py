"""The channel operations: the plugin manager, the gate every call passes, order download, tracking
upload, Test Settings, order acceptance, and the tracking numbers staff type."""
