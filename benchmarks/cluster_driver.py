"""Drive `scripts/cluster.sh` from Python, for the scale-out tests and `marquee bench cluster`.

    with Cluster(tmp_dir, env={"MARQUEE_HOME": home}) as cluster:        # up (everything) … down --purge
        cluster.urls["lb"], cluster.urls["postgres"]
        cluster.kill("replica1")                                          # kill -9, as a crash would
        cluster.up()                                                      # restarts just what is not running

The script is the one implementation (operators run it too); this only calls it and reads its "NAME URL" lines
and PID files. It lives in the source checkout (scripts/), not in the installed package.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cluster.sh"
MISSING_PACKAGE = 3  # cluster.sh's exit code when a Debian package (postgresql, nginx) is not installed


class ClusterError(RuntimeError):
    """`cluster.sh` failed; the message carries its stderr."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class Cluster:
    def __init__(self, directory: Path, only: tuple[str, ...] = (), env: dict | None = None, timeout: float = 1200):
        if not SCRIPT.is_file():
            raise FileNotFoundError(f"{SCRIPT} not found: the cluster runs from a source checkout")
        self.dir = Path(directory)
        self.only = only
        self.env = {**os.environ, **(env or {})}
        self.timeout = timeout
        self.urls: dict[str, str] = {}

    def _run(self, *args: str) -> str:
        result = subprocess.run(["bash", str(SCRIPT), *args, "--dir", str(self.dir)], env=self.env, text=True,
                                capture_output=True, timeout=self.timeout)
        if result.returncode != 0:
            raise ClusterError(f"cluster.sh {args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}",
                               result.returncode)
        return result.stdout

    def up(self) -> dict[str, str]:
        """Start what is not running; returns {name: url} from the script's output lines."""
        args = ["up"] + (["--only", ",".join(self.only)] if self.only else [])
        lines = self._run(*args).splitlines()
        self.urls = dict(line.split(" ", 1) for line in lines if " " in line)
        return self.urls

    def down(self, purge: bool = False) -> None:
        self._run("down", *(["--purge"] if purge else []))

    def pid(self, name: str) -> int:
        return int((self.dir / f"{name}.pid").read_text().strip())

    def alive(self, name: str) -> bool:
        """Running, not merely not yet reaped: a killed replica's parent (cluster.sh) has exited, so it waits as a
        zombie until init reaps it, and a zombie still answers kill(pid, 0) (scripts/cluster.sh `running` reads
        /proc/PID/cmdline, empty for a zombie, for the same reason)."""
        try:
            pid = self.pid(name)
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True  # no /proc here: kill(pid, 0) is all there is
        return state not in ("Z", "X")

    def kill(self, name: str) -> int:
        """kill -9 one service (as a crash or the OOM killer would); returns its PID."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> "Cluster":
        try:
            self.up()
        except BaseException:
            try:  # stop whatever did start; the start-up error is the one to report
                self.down(purge=True)
            except ClusterError:
                pass
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down(purge=True)
