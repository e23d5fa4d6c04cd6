"""Alerts: rules, state machine, transactional outbox, delivery worker and channels (design section 7)."""
