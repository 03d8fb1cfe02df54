"""Preference understanding: a message becomes a typed `Preferences` delta (deterministic, EN + ZH)."""
from agent.understanding.model import OrdinalRef, Preferences, TitleRef, describe_years
from agent.understanding.parser import MAX_MESSAGE_CHARS, PreferenceParser, clean_message

__all__ = ["MAX_MESSAGE_CHARS", "OrdinalRef", "PreferenceParser", "Preferences", "TitleRef", "clean_message",
           "describe_years"]
