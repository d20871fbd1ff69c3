"""Follow-ups: the followup.toml policy, deadlines, reminder runs and reports."""
