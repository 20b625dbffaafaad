"""The offline trainer: baseline segments from an event history."""
