"""Supervisors' reports: schedules, late / early / absent / hours, exporters (pure logic)."""
