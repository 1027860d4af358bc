"""Local mode: the llama.cpp server process, and the settings that point this kernel at it."""
