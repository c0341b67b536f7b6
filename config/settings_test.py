"""Test settings: the real database named by DATABASE_URL (SQLite by default), fast hashing,
e-mail kept in memory, and Celery tasks run in-process unless a test starts a real worker."""

from .settings import *  # noqa: F403

SECRET_KEY = SECRET_KEY or "test-only-key-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFG"  # noqa: F405
# A fixed key for the Microsoft connection's encrypted secrets (usage.microsoft.secrets).
FIELD_ENCRYPTION_KEY = FIELD_ENCRYPTION_KEY or "dGVzdC1vbmx5LWZpZWxkLWtleS0wMTIzNDU2Nzg5YWI="  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
EXPORT_DIR = VAR_DIR / "test-exports"  # noqa: F405
IMPORT_DIR = VAR_DIR / "test-imports"  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's shared in-memory database: the browser tests' live server and
    # Celery worker run in threads that need connections of their own (as web and worker
    # processes have under `make run`). One file per test process, so runs side by side
    # do not meet; Django deletes it when the run ends.
    import os as _os

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(VAR_DIR / f"test-{_os.getpid()}.sqlite3"),  # noqa: F405
    }
