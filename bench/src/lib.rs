//! Zonefleet's benchmarks. Each is a binary in `src/bin/`; see `docs/benchmarks.md`.
