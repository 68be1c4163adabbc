"""Dialogue: persona prompt, turn and state logic, interruption."""
