# Local stand-in for get-pip.py (no access to ci-files.testing.ansible.com):
# bootstrap the bundled pip with ensurepip, then install what was asked from the configured index.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
