"""`make run`: the web server, a Celery worker and beat in one terminal.

Started after `migrate` and `seed_demo`. The three processes run in their own process
groups, so Ctrl-C reaches only this script: it asks each to stop (SIGTERM), waits at most
STOP_SECONDS, kills what is left, and exits 0 (no "Error 130" from make). The address and
the demo sign-in are printed last, once the web server answers.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request

STOP_SECONDS = 2.0
READY_SECONDS = 60


def commands(port: str) -> dict[str, list[str]]:
    python = sys.executable
    # The worker and beat say only what needs attention (-q: no start-up banner).
    return {
        "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        # A development container often runs as root: Celery's warning about it would
        # come after the address, which must stay the last lines printed.
        "worker": [python, "-W", "ignore:You're running the worker with superuser privileges",
                   "-m", "celery", "-A", "config", "-q", "worker",
                   "--loglevel=WARNING", "--concurrency=2"],
        "beat": [python, "-m", "celery", "-A", "config", "-q", "beat", "--loglevel=WARNING",
                 "--schedule=var/celerybeat-schedule"],
    }


def wait_until_up(url: str, procs: dict) -> bool:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(procs: dict) -> None:
    # The main process only: the worker stops its own pool (a SIGTERM to the pool's
    # processes as well would have the worker log each as an error).
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def demo_sign_in() -> tuple[str, str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from credits.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD

    return DEMO_ADMIN_EMAIL, DEMO_PASSWORD


def main() -> int:
    port = os.environ.get("WEB_PORT", "8000")
    address = f"http://127.0.0.1:{port}/"
    email, password = demo_sign_in()
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    procs = {name: subprocess.Popen(cmd, start_new_session=True)
             for name, cmd in commands(port).items()}
    try:
        if not wait_until_up(address + "healthz", procs):
            if stopping:
                return 0
            print("Credits Center did not start; see the messages above.", flush=True)
            return 1
        print(f"\nCredits Center: {address}\nSign in as {email} with the password "
              f"{password}\nCtrl-C stops the web server, the worker and beat.", flush=True)
        while not stopping:
            ended = [name for name, p in procs.items() if p.poll() is not None]
            if ended:
                print(f"Credits Center: the {ended[0]} process stopped; stopping the others.",
                      flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
