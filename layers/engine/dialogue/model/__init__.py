"""The language of dialogue: pydantic models that are the single source of truth."""
