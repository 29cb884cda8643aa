"""The channel operations: the plugin manager (``plugins``), the gate every call passes (``gate``),
where a download starts (``cursors``), order download (``download``), tracking upload (``upload``),
Test Settings (``settings_test``, as a job ``connection_test``), order acceptance, tracking numbers."""
