-- PostgreSQL's migration 0010 adds the table through which replicas share the access
-- token. A SQLite database serves one process, which keeps its token in memory; this
-- version only keeps the numbering of the two folders equal.
SELECT 1;
