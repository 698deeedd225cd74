"""Unit tests of kpack_core.keychains: secret parsing, both registry matchers, git matching, keychain composition."""
