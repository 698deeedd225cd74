"""The envtest CA: certificates chain to it and carry what Kubernetes reads from them."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kpack_core.envtest.certs import CertificateAuthority


def test_serving_certificate_chains_to_the_ca_and_names_its_hosts() -> None:
    ca = CertificateAuthority()
    pair = ca.issue_serving(["localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    root = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(root)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_client_certificate_carries_user_and_groups() -> None:
    ca = CertificateAuthority()
    cert = x509.load_pem_x509_certificate(ca.issue_client("alice", ("devs", "ops")).cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == ["devs", "ops"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))


def test_written_key_is_private(tmp_path: Path) -> None:
    _, key = CertificateAuthority().issue_client("bob").write(tmp_path, "bob")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
