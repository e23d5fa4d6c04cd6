"""Orchestration: config, registry, scans, persistence, alerts, scheduler, CLI, devnet."""

__version__ = "0.1.0"
