"""Conversion of GGUF files in the old split-expert MoE layout (January 2024) to the merged
layout current llama.cpp loads: the plan from the header, the streaming merge, and the k-quant
(re)quantizers it needs where gguf-py has none.
"""
