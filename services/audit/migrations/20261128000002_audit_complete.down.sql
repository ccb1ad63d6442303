DROP TABLE archived_partitions;
DROP TABLE archived_links;
DROP INDEX access_log_tenant_idx;
DROP INDEX audit_log_tenant_idx;
