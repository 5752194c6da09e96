"""Getting a model: the catalog of known models and quants (data under resources/catalog),
the rule that says which quant fits this machine, and Hugging Face downloads with progress,
cancel, resume and verification.
"""
