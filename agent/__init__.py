"""The LiveKit Agents worker: STT, LLM, TTS and the avatar in one room."""
