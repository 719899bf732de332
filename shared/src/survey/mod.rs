//! The pre-chat survey: its definition (YAML), answer validation, and the pure engine.
