"""The database room: connections and retried transactions, the batch inserter, COPY
formatting, the audit trail, the schema and the table names."""
