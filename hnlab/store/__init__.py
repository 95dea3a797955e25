"""Where hnlab keeps what it saw: PostgreSQL (embedded or a URL), its tables and migrations,
the repositories and run records that write them, the RocksDB cache, access and export."""
