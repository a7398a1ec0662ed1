"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test looks for a cached ``get_pip_<version>.py`` before downloading one from a host these
machines cannot reach, and it drops ``PIP_*`` from the environment.  This script bootstraps pip
from the standard library (ensurepip), then installs what ansible-test asked for, passing the
machine's CA bundle explicitly.  ``make sanity`` copies it into ansible-test's cache.
"""

import ensurepip
import os
import subprocess
import sys

CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def main() -> int:
    ensurepip.bootstrap(upgrade=True)
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    if not args:
        return 0
    command = [sys.executable, "-m", "pip", "install"]
    for bundle in CA_BUNDLES:
        if os.path.exists(bundle):
            command += ["--cert", bundle]
            break
    return subprocess.call(command + args)


if __name__ == "__main__":
    sys.exit(main())
