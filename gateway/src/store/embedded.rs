//! The embedded store: SQLite in one local file.
