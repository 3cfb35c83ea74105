"""The one small library every labcloud service shares: configuration, database access,
migrations, errors, schema validation, timers and the clock."""
