"""One lock per conversation session, that neither leaks nor can be kept forever by a paused stream.

A turn works on a copy of the session's state and commits it at the end (`agent.core`), holding the
session's lock meanwhile, so two requests of one session run one after the other. Two ways that lock
could hang a session, and what happens instead:

  * a request waits at most `wait_s` (`[agent] session_wait_s`) for the one running, then fails with
    `SessionBusyError` ("this session is busy"), instead of queueing forever;
  * `agent.stream()` holds the lock across its yields (the turn commits after the last one), and a
    consumer may stop pulling without closing the generator. While the stream is paused at a yield for
    longer than `lease_s` (`[agent] stream_pause_s`), a waiting request takes the lock over; the paused
    stream, if it is ever resumed, raises `SessionBusyError` and commits nothing (its turn is dropped, the
    session keeps the state the other request left). A stream being consumed is never interrupted.

The lock is a condition variable, not a thread-owned lock: Gradio resumes a generator on whichever worker
thread is free, so pause, resume and release may come from other threads than the acquire. An entry exists
only while someone holds or waits for it, so millions of sessions leave nothing behind.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager


class SessionBusyError(RuntimeError):
    """Another request of the same session is still running (or took over a paused stream)."""


class _Entry:
    __slots__ = ("owner", "paused_at", "users")

    def __init__(self) -> None:
        self.owner: object | None = None  # the token of the turn holding the lock
        self.paused_at: float | None = None  # monotonic time the owner paused at a yield; None while it runs
        self.users = 0  # holders + waiters; the entry is dropped at 0


class SessionLocks:
    def __init__(self, wait_s: float = 60.0, lease_s: float = 30.0):
        self.wait_s = wait_s
        self.lease_s = lease_s
        self._cond = threading.Condition(threading.Lock())
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """Sessions with a holder or a waiter right now."""
        with self._cond:
            return len(self._entries)

    @contextmanager
    def hold(self, sid: str):
        """Hold the session's lock for a block; yields a token for `pause` / `resume` (streams)."""
        token = object()
        self._acquire(sid, token)
        try:
            yield token
        finally:
            self._release(sid, token)

    def _acquire(self, sid: str, token: object) -> None:
        with self._cond:
            entry = self._entries.setdefault(sid, _Entry())
            entry.users += 1
            deadline = time.monotonic() + self.wait_s
            while entry.owner is not None:
                now = time.monotonic()
                if entry.paused_at is not None and now - entry.paused_at >= self.lease_s:
                    break  # an abandoned stream: take the session over (its `resume` will fail)
                if now >= deadline:
                    entry.users -= 1
                    self._drop_if_unused(sid, entry)
                    raise SessionBusyError(f"this session is busy: another request of session {sid!r} has been "
                                           f"running for over {self.wait_s:.0f} s; try again when it has finished")
                until = deadline if entry.paused_at is None else min(deadline, entry.paused_at + self.lease_s)
                self._cond.wait(max(0.0, until - now))
            entry.owner, entry.paused_at = token, None

    def _release(self, sid: str, token: object) -> None:
        with self._cond:
            entry = self._entries.get(sid)
            if entry is None:
                return
            if entry.owner is token:
                entry.owner, entry.paused_at = None, None
            entry.users -= 1
            self._drop_if_unused(sid, entry)
            self._cond.notify_all()

    def _drop_if_unused(self, sid: str, entry: _Entry) -> None:
        if entry.users <= 0 and self._entries.get(sid) is entry:
            del self._entries[sid]

    def pause(self, sid: str, token: object) -> None:
        """The owner is about to yield: from now on a waiter may take over after `lease_s`."""
        with self._cond:
            entry = self._entries.get(sid)
            if entry is not None and entry.owner is token:
                entry.paused_at = time.monotonic()
                self._cond.notify_all()

    def resume(self, sid: str, token: object) -> None:
        """The owner runs again; raises SessionBusyError if its lock was taken over while it was paused."""
        with self._cond:
            entry = self._entries.get(sid)
            if entry is None or entry.owner is not token:
                raise SessionBusyError(f"this reply was paused for over {self.lease_s:.0f} s and another request of "
                                       f"session {sid!r} went ahead; the reply was not saved, send it again")
            entry.paused_at = None
