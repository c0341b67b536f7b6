"""The connection's client secret and certificate, encrypted at rest with Fernet.

`FIELD_ENCRYPTION_KEY` holds one or more Fernet keys, comma-separated: the first encrypts,
any of them decrypts (MultiFernet), so a key can be rotated. Without a key nothing is
stored and nothing is read: the caller gets a ConnectorError("no_key") that says so.
"""

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from .errors import ConnectorError


def _fernet() -> MultiFernet:
    raw = (getattr(settings, "FIELD_ENCRYPTION_KEY", "") or "").strip()
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ConnectorError("no_key")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:  # not 32 url-safe base64-encoded bytes
        raise ConnectorError("no_key", "FIELD_ENCRYPTION_KEY is not a valid Fernet key") \
            from exc


def key_configured() -> bool:
    try:
        _fernet()
    except ConnectorError:
        return False
    return True


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise ConnectorError("bad_key") from exc


def secret_hint(secret: str) -> str:
    """What the page shows of a secret: its first three characters, as Entra's portal does."""
    return secret[:3] + "…" if len(secret) > 6 else "…"


def certificate_parts(pem: str) -> tuple[str, str]:
    """(private key PEM, SHA-1 thumbprint in hex) of a PEM holding a private key and its
    certificate, as msal's client credential wants them. ValueError says what is missing."""
    data = pem.encode("utf-8")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("expected an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        # Microsoft Entra signs client assertions with RS256 (or PS256): RSA keys only.
        raise ValueError("expected an RSA private key (Microsoft Entra accepts RSA only)")
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ValueError("expected the PEM certificate beside the private key") from exc
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return key_pem, cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 (Entra's x5t)
