"""Helpers the tests share: servers, signing, proxies, README parsing."""
