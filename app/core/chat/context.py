"""The application context: built once at start and passed down, never a global."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.appdata.paths import Paths, default_paths
from app.core.appdata.secrets import SecretStore
from app.core.appdata.settings import Settings
from app.core.store import Store


@dataclass
class AppContext:
    paths: Paths
    settings: Settings
    store: Store
    secrets: SecretStore

    @classmethod
    def create(cls, paths: Paths | None = None) -> AppContext:
        """Open folders, settings and the database; raises StoreError/OSError with a reason."""
        paths = (paths or default_paths()).ensure()
        store = Store(paths.database)
        store.messages.recover_interrupted()
        return cls(paths, Settings.load(paths.settings_file), store, SecretStore(paths.config))

    def save_settings(self) -> None:
        self.settings.save(self.paths.settings_file)

    def close(self) -> None:
        self.store.close()
