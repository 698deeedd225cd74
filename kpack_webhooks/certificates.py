"""The webhook's certificates: a CA and a serving certificate kept in a Secret, created when absent and renewed
before they expire, and the CA bundle written into every place the apiserver reads it from.

The Secret (default `webhook-certs`) holds `ca-cert.pem` (the CA that signed the serving certificate),
`server-cert.pem`, `server-key.pem` and `ca-bundle.pem` (every CA the apiserver is to trust). It is the one source
of truth for all replicas: whichever replica finds it absent, incomplete, unusable for the service's host names, or
past two thirds of its lifetime, generates a new pair and writes it (create, or update at the resourceVersion read);
a replica that loses that race re-reads and takes the winner's.

A renewal makes a new CA along with the serving certificate (no CA key is ever stored) and keeps the previous CA in
the bundle while it is valid, so certificates still presented by other replicas, or on connections opened before
the switch, stay trusted. Each replica, on seeing new certificates, first injects the bundle (`inject_ca_bundle`,
idempotent), waits for the apiserver to pick it up, and only then serves the new certificate.

Key generation is CPU work and runs in a thread; keys are ECDSA P-256 (fast, and accepted by the apiserver's TLS).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kpack_core.runtime import errors
from kpack_core.runtime.client import Client, PatchType
from kpack_core.runtime.clock import REAL_CLOCK, Clock
from kpack_core.runtime.resource import CUSTOM_RESOURCE_DEFINITIONS, SECRETS, Resource
from kpack_webhooks.registration import MUTATING_WEBHOOK_CONFIGURATIONS, VALIDATING_WEBHOOK_CONFIGURATIONS

log = structlog.get_logger(__name__)

CA_CERT_KEY = "ca-cert.pem"
SERVER_CERT_KEY = "server-cert.pem"
SERVER_KEY_KEY = "server-key.pem"
CA_BUNDLE_KEY = "ca-bundle.pem"

BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start a little in the past, for apiservers whose clock is slightly behind ours."""


def service_hosts(service: str, namespace: str) -> list[str]:
    """The names the apiserver may dial a service by; it verifies `<service>.<namespace>.svc`."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


LOCAL_HOSTS = ("localhost", "127.0.0.1")
"""Extra names for a webhook served on the loopback (local mode, tests)."""


@dataclass(frozen=True)
class CertificateOptions:
    """Where the certificates are kept, what they are valid for, and when they are renewed."""

    namespace: str = "kpack"
    secret_name: str = "webhook-certs"
    service: str = "kpack-webhook"
    extra_hosts: tuple[str, ...] = ()
    """More SANs besides the service's names, e.g. `LOCAL_HOSTS`."""
    validity: datetime.timedelta = datetime.timedelta(days=90)
    renew_fraction: float = 1 / 3
    """Renew once less than this fraction of the lifetime is left (30 days of 90)."""
    check_interval: float = 600.0
    """Seconds between two looks at the Secret (for renewal, and for certificates renewed by another replica)."""

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys([*service_hosts(self.service, self.namespace), *self.extra_hosts]))


@dataclass(frozen=True)
class Certificates:
    """The PEM material of the Secret."""

    ca_cert_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    ca_bundle_pem: bytes = field(default=b"")
    """Every CA to trust (the current one first); just the current one when empty."""

    @property
    def bundle(self) -> bytes:
        return self.ca_bundle_pem or self.ca_cert_pem

    @classmethod
    def from_secret(cls, secret: dict[str, object]) -> Certificates | None:
        """The certificates in a Secret, or None when any of them is missing or not base64."""
        data = secret.get("data")
        if not isinstance(data, dict):
            return None
        try:
            decoded = {key: base64.b64decode(str(value), validate=True) for key, value in data.items()}
        except (binascii.Error, ValueError):
            return None
        if not all(decoded.get(key) for key in (CA_CERT_KEY, SERVER_CERT_KEY, SERVER_KEY_KEY)):
            return None
        return cls(
            decoded[CA_CERT_KEY], decoded[SERVER_CERT_KEY], decoded[SERVER_KEY_KEY], decoded.get(CA_BUNDLE_KEY, b"")
        )

    def secret_data(self) -> dict[str, str]:
        values = {
            CA_CERT_KEY: self.ca_cert_pem,
            SERVER_CERT_KEY: self.server_cert_pem,
            SERVER_KEY_KEY: self.server_key_pem,
            CA_BUNDLE_KEY: self.bundle,
        }
        return {key: base64.b64encode(value).decode() for key, value in values.items()}


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def generate(
    hosts: Sequence[str],
    now: datetime.datetime,
    validity: datetime.timedelta,
    previous: Certificates | None = None,
) -> Certificates:
    """A new CA and a serving certificate for `hosts`, both valid from `now` (backdated) for `validity`.

    The bundle is the new CA, plus `previous`'s CA while that is still valid. CPU-bound: call it in a thread.
    """
    if not hosts:
        raise ValueError("a serving certificate needs at least one host name")
    start, end = now - BACKDATE, now + validity
    ca_key = ec.generate_private_key(ec.SECP256R1())
    # A CA name unique per generation: two CAs in one bundle must not be told apart only by their key identifiers.
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{hosts[0]}-ca-{int(now.timestamp())}")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(host) for host in hosts]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    bundle = ca_pem
    if previous is not None:
        try:
            old_ca = x509.load_pem_x509_certificate(previous.ca_cert_pem)
            if old_ca.not_valid_after_utc > now:
                bundle += previous.ca_cert_pem
        except ValueError:
            pass  # an unreadable old CA vouches for nothing
    return Certificates(ca_pem, server_cert.public_bytes(serialization.Encoding.PEM), _key_pem(server_key), bundle)


def renewal_reason(
    certificates: Certificates | None, hosts: Sequence[str], now: datetime.datetime, renew_fraction: float
) -> str | None:
    """Why `certificates` must be replaced now, or None when they are good for a while yet."""
    if certificates is None:
        return "absent or incomplete"
    try:
        ca = x509.load_pem_x509_certificate(certificates.ca_cert_pem)
        server = x509.load_pem_x509_certificate(certificates.server_cert_pem)
        key = serialization.load_pem_private_key(certificates.server_key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "unreadable"
    if key.public_key() != server.public_key():
        return "the key does not match the certificate"
    try:
        server.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the serving certificate is not signed by the CA"
    try:
        sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subject alternative names"
    names = {str(name) for name in sans.get_values_for_type(x509.DNSName)}
    names |= {str(address) for address in sans.get_values_for_type(x509.IPAddress)}
    missing = [host for host in hosts if str(_san(host).value) not in names]
    if missing:
        return f"not valid for {', '.join(missing)}"
    not_before, not_after = server.not_valid_before_utc, server.not_valid_after_utc
    if now >= not_after or now >= ca.not_valid_after_utc:
        return "expired"
    if not_after - now < (not_after - not_before) * renew_fraction:
        return "due for renewal"
    return None


OnChange = Callable[[Certificates], Awaitable[None]]


class CertificateManager:
    """Keeps the Secret's certificates valid and tells `watch`'s callback whenever they change."""

    ATTEMPTS = 5

    def __init__(self, client: Client, options: CertificateOptions | None = None, *, clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.options = options or CertificateOptions()
        self.clock = clock
        self.current: Certificates | None = None

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock.wall(), datetime.UTC)

    async def ensure(self) -> Certificates:
        """The Secret's certificates, created or renewed first when needed."""
        options = self.options
        target = SECRETS.describe(options.namespace, options.secret_name)
        for _ in range(self.ATTEMPTS):
            try:
                secret: dict[str, object] | None = await self.client.get(
                    SECRETS, options.secret_name, options.namespace
                )
            except errors.NotFoundError:
                secret = None
            current = Certificates.from_secret(secret) if secret is not None else None
            now = self._now()
            reason = renewal_reason(current, options.hosts, now, options.renew_fraction)
            if reason is None and current is not None:
                return current
            log.info("generating webhook certificates", secret=target, reason=reason)
            fresh = await asyncio.to_thread(generate, options.hosts, now, options.validity, current)
            try:
                if secret is None:
                    await self.client.create(SECRETS, self._new_secret(fresh), options.namespace)
                else:
                    data = secret.get("data")
                    secret["data"] = {**(data if isinstance(data, dict) else {}), **fresh.secret_data()}
                    await self.client.update(SECRETS, secret)
            except (errors.AlreadyExistsError, errors.ConflictError):
                log.info("another replica wrote the webhook certificates first; re-reading", secret=target)
                continue
            return fresh
        raise RuntimeError(f"{target}: still contended after {self.ATTEMPTS} attempts to write the certificates")

    def _new_secret(self, certificates: Certificates) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": self.options.secret_name, "namespace": self.options.namespace},
            "data": certificates.secret_data(),
        }

    async def check(self, on_change: OnChange) -> Certificates:
        """One look: ensure valid certificates and call `on_change` if they differ from the last ones seen."""
        certificates = await self.ensure()
        if self.current is None or certificates.server_cert_pem != self.current.server_cert_pem:
            await on_change(certificates)
            self.current = certificates
        return certificates

    async def watch(self, on_change: OnChange) -> None:
        """Check every `check_interval` seconds, forever; failures are logged and retried at the next check."""
        while True:
            await self.clock.sleep(self.options.check_interval)
            try:
                await self.check(on_change)
            except (errors.ApiError, errors.TransportError, RuntimeError, ValueError, OSError) as exc:
                log.warning("checking the webhook certificates failed; retrying later", error=str(exc))


# -- caBundle injection -------------------------------------------------------------------------------------------


async def inject_ca_bundle(
    client: Client,
    ca_bundle_pem: bytes,
    *,
    crd_group: str | None = "kpack.io",
    crd_names: Sequence[str] = (),
    mutating: Sequence[str] = (),
    validating: Sequence[str] = (),
) -> list[str]:
    """Write `ca_bundle_pem` into the conversion webhook of every CRD of `crd_group` (and of the CRDs named in
    `crd_names`) whose conversion strategy is Webhook, and into every webhook of the named Mutating/Validating
    WebhookConfigurations. Only what differs is patched (so calling it again changes nothing); returns what was."""
    bundle = base64.b64encode(ca_bundle_pem).decode()
    patched: list[str] = []
    for crd in (await client.list(CUSTOM_RESOURCE_DEFINITIONS)).items:
        name = crd["metadata"]["name"]
        spec = crd.get("spec") or {}
        if not ((crd_group is not None and spec.get("group") == crd_group) or name in crd_names):
            continue
        conversion = spec.get("conversion") or {}
        if conversion.get("strategy") != "Webhook":
            continue
        config = (conversion.get("webhook") or {}).get("clientConfig") or {}
        if config.get("caBundle") == bundle:
            continue
        patch = {"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": bundle}}}}}
        await client.patch(CUSTOM_RESOURCE_DEFINITIONS, name, patch)
        patched.append(CUSTOM_RESOURCE_DEFINITIONS.describe(None, name))
    for resource, names in (
        (MUTATING_WEBHOOK_CONFIGURATIONS, mutating),
        (VALIDATING_WEBHOOK_CONFIGURATIONS, validating),
    ):
        for name in names:
            if await _inject_webhooks(client, resource, name, bundle):
                patched.append(resource.describe(None, name))
    if patched:
        log.info("CA bundle injected", targets=patched)
    return patched


async def _inject_webhooks(client: Client, resource: Resource, name: str, bundle: str) -> bool:
    for _ in range(3):
        try:
            config = await client.get(resource, name)
        except errors.NotFoundError:
            log.warning("webhook configuration not found; no CA bundle injected", target=resource.describe(None, name))
            return False
        operations: list[dict[str, object]] = []
        for index, webhook in enumerate(config.get("webhooks") or []):
            if (webhook.get("clientConfig") or {}).get("caBundle") == bundle:
                continue
            # The test pins the index to the webhook read: if the list changed meanwhile, the patch fails as a whole.
            operations.append({"op": "test", "path": f"/webhooks/{index}/name", "value": webhook.get("name")})
            operations.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": bundle})
        if not operations:
            return False
        try:
            await client.patch(resource, name, operations, patch_type=PatchType.JSON)
            return True
        except (errors.InvalidError, errors.ConflictError):
            continue  # a failed test (changed under us): read again
    raise RuntimeError(f"{resource.describe(None, name)}: kept changing while injecting the CA bundle")
