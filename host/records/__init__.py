"""The domain records the host keeps: companies and their credentials, orders, shipments, users and
their access, the Change Log, money; and the read queries behind the web admin's grids."""
