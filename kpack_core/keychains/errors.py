"""Typed errors of the keychains: secret data that cannot be read as the format its type promises.

The message names where the data came from (`secret <namespace>/<name>`, or a mounted directory) and the data key
at fault, and says what is wrong with it, but never quotes the value: secret data must not reach a log line, an
exception chain or a status condition.
"""

from __future__ import annotations


class SecretFormatError(ValueError):
    """Secret data does not parse as its type says (bad base64, bad JSON, wrong shape, undecodable `auth`).

    `source` names the secret (`secret ns/name`) or directory, `key` the data key (`.dockerconfigjson`, `username`,
    ...), `problem` what is wrong, in words that contain no secret value.
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: key {key!r}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


def describe_key(key: str) -> str:
    """A docker config key (a registry address) as messages and logs may show it: any user info in it
    (`https://user:password@host`) is replaced, since such a key would carry a secret."""
    scheme, separator, rest = key.rpartition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{separator}{authority}{slash}{path}"
