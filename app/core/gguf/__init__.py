"""GGUF files without llama.cpp: reading a header (metadata and tensor table, with bounds),
the ggml type table, writing a header, and the memory estimate for a context size and a
number of GPU layers.
"""
