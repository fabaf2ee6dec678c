"""A container healthcheck: exit 0 when http://127.0.0.1:$PORT_VARIABLE/PATH answers 2xx.

probe PORT_VARIABLE PATH      (e.g. probe CONVEYOR_SERVE_PORT /readyz)
"""

import os
import sys
import urllib.request

port_variable, path = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{os.environ[port_variable]}{path}"
try:
    with urllib.request.urlopen(url, timeout=2) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except OSError as exc:
    sys.stderr.write(f"{url}: {exc}\n")
    sys.exit(1)
