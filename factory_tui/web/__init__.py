"""The console served to web browsers (textual-serve, the optional `web` extra)."""
