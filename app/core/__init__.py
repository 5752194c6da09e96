"""The domain: everything that is not Qt. Nothing under here may import PySide6."""
