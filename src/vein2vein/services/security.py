"""The password hasher (argon2id, from argon2-cffi) and the security settings it serves."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vein2vein.config import Settings
from vein2vein.domain.people import PasswordPolicy, Security

__all__ = ["Argon2Hasher", "security_from"]


class Argon2Hasher:
    """argon2id with the given cost; a hash made with other costs still verifies, and
    :meth:`needs_rehash` says when it should be re-made at sign-in."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65_536, parallelism: int = 4):
        self._argon2 = _Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, hashed: str, password: str) -> bool:
        try:
            return self._argon2.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        return self._argon2.check_needs_rehash(hashed)


def security_from(settings: Settings) -> Security:
    """The services' security settings from the application's settings."""
    return Security(
        hasher=Argon2Hasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
        policy=PasswordPolicy(
            min_length=settings.password_min_length,
            max_age_days=settings.password_max_age_days,
            lockout_after=settings.lockout_after,
        ),
        session_idle_minutes=settings.session_idle_minutes,
        session_hours=settings.session_hours,
        token_days=settings.token_days,
        cli_hours=settings.cli_token_hours,
    )
