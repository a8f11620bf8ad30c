"""The one error hierarchy. Every expected failure is an ImgbatchError; the CLI's
top-level handler turns it into a one-line message and an exit code."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and found a failure (invalid manifest, failed tasks)
EXIT_USAGE = 2  # bad usage or invalid input
EXIT_CONFIG = 3  # authentication or configuration (missing key, 401, bad base URL)
EXIT_REFUSED = 4  # a guard refused: spending limit, ledger locked
EXIT_UNREACHABLE = 5  # the service could not be reached or gave no usable answer
EXIT_INTERNAL = 70  # a bug
EXIT_INTERRUPTED = 130  # Ctrl-C


class ImgbatchError(Exception):
    """Base of every error imgbatch reports to a user."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class InputError(ImgbatchError):
    """A file or argument the user gave cannot be used."""

    exit_code = EXIT_USAGE


class ManifestInvalid(ImgbatchError):
    """One or more manifests have errors; the diagnostics were already reported."""

    exit_code = EXIT_USAGE


class ConfigError(ImgbatchError):
    exit_code = EXIT_CONFIG


class GuardRefused(ImgbatchError):
    exit_code = EXIT_REFUSED


class LedgerError(ImgbatchError):
    exit_code = EXIT_USAGE


class ServiceError(ImgbatchError):
    """The API could not be reached or answered something unusable."""

    exit_code = EXIT_UNREACHABLE


class AuthError(ServiceError):
    exit_code = EXIT_CONFIG
