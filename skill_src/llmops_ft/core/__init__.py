"""What every command shares: its result type, the verb table and the stage runner."""
