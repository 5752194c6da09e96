"""The app's place on this computer: its folders (platformdirs, or `PARLOR_HOME`), typed
settings, secrets in the keyring, logs and diagnostics, the single-instance lock, the bundled
resources, and what the hardware holds (RAM and VRAM probes). The bottom layer: it imports no
other part of `app.core`.
"""
