"""Backups: encrypted archives of the exchange (journal, snapshot, database, data files), their
restore and verification, and the daily backups and journal shipping of ``dpg up``."""
