"""Reports on the plan's communication activities: the report periods (``periods``) and what reports count."""
