"""What the fakes of these tests see of a command: the program and its arguments.

Root runs a user's commands through ``runuser -u USER -- env K=V ... ARGV``
(module_utils/host.py ``as_user_argv``); a fake answers ARGV.
"""
import os


def unwrap(argv):
    """ARGV without a leading ``runuser -u USER -- [env K=V ...]``."""
    argv = list(argv)
    if argv and os.path.basename(argv[0]) == "runuser" and "--" in argv:
        argv = argv[argv.index("--") + 1:]
        if argv and os.path.basename(argv[0]) == "env":
            argv = argv[1:]
            while argv and "=" in argv[0] and not argv[0].startswith("/"):
                argv = argv[1:]
    return argv


def runuser_user(argv):
    """The USER of a ``runuser -u USER`` command, or None."""
    argv = list(argv)
    if argv and os.path.basename(argv[0]) == "runuser" and "-u" in argv:
        return argv[argv.index("-u") + 1]
    return None
