"""Getting a model: the catalog of known models and quants (data under resources/catalog),
the rule that says which quant fits this machine, and Hugging Face downloads with progress,
cancel, resume and verification.

    catalog        the catalog and the fit rule
    remote         what is on the hub, and `Hub` (endpoint, token, the one HTTP session)
    remote_header  a GGUF header read with Range requests, before any download
    plan           what is installed already, where `.part` files go, disk space
    manifest       `<file>.parlor.json`: what an installed file came from (and its conversion)
    lock           one writer per `.part`, across windows and processes
    transfer       Range requests, retries with a bounded backoff
    verify         checksums and the atomic rename
    downloads      `download()` over all of these; the names callers import
"""
