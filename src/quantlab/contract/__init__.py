"""The Stepbit I/O contract: request schema and parsing, exit codes, signals, envelope, paths."""
