"""The template's Step Functions state machines on the in-process moto server.

- `enable_execution`: moto executes state machines (and invokes Lambda without Docker).
- `create_state_machines`: every `AWS::Serverless::StateMachine` and
  `AWS::StepFunctions::StateMachine` of the template, `DefinitionSubstitutions` applied, and a
  moto Lambda function for every `AWS::Serverless::Function`, so that
  `arn:aws:states:::lambda:invoke` tasks find their function.
- `route_lambda_invokes`: a Lambda invoke (direct, or from a state machine) calls the real handler
  in-process through a callable given by the runtime.
- `SimulatedWaits`: Wait states (and Retry intervals) never sleep in real time: a Wait blocks until
  a simulated clock reaches its target; `advance_to(t)` releases the due ones, then returns when
  every execution has finished or is blocked again in a later Wait.

Only for a moto running in this process (`ThreadedMotoServer` or `mock_aws`): the patches are on
moto's classes, and quiescence is read from the executions' threads.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialogue.local.template import ACCOUNT, REGION, Resolver, as_json_string

LOG = logging.getLogger(__name__)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
RUNTIME = "python3.12"


# --- moto configuration ----------------------------------------------------------------------
def enable_execution(endpoint: str) -> None:
    """Make the moto server at `endpoint` execute state machines and invoke Lambda without
    Docker. Process-wide in moto (`default_user_config`), kept across `/moto-api/reset`. Call it
    before creating any function or state machine: both services keep them in another backend
    once switched."""
    import urllib.request

    body = json.dumps({"stepfunctions": {"execute_state_machine": True},
                       "lambda": {"use_docker": False}}).encode()
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/moto-api/config", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 - the local moto server
        response.read()


# --- names -------------------------------------------------------------------------------------
def function_name(resolver: Resolver, logical: str) -> str:
    props = resolver.resources[logical].get("Properties", {})
    return str(resolver.resolve(props["FunctionName"])) if "FunctionName" in props \
        else resolver.name(logical)


def function_arn(resolver: Resolver, logical: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(resolver, logical)}"


def state_machine_name(resolver: Resolver, logical: str) -> str:
    props = resolver.resources[logical].get("Properties", {})
    for key in ("Name", "StateMachineName"):
        if key in props:
            return str(resolver.resolve(props[key]))
    return resolver.name(logical)


def state_machine_arn(resolver: Resolver, logical: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{state_machine_name(resolver, logical)}"


def lambda_names(resolver: Resolver) -> dict[str, str]:
    """Function name → logical id, for every function of the template."""
    return {function_name(resolver, logical): logical
            for logical, spec in resolver.resources.items() if spec["Type"] in FUNCTION_TYPES}


# --- creating the resources --------------------------------------------------------------------
def create_functions(session: Any, resolver: Resolver) -> dict[str, str]:
    """A moto Lambda function (a placeholder zip: invokes are routed in-process) for every
    function of the template; logical id → ARN. Registers `!GetAtt X.Arn` in the resolver."""
    out: dict[str, str] = {}
    logicals = [lg for lg, s in resolver.resources.items() if s["Type"] in FUNCTION_TYPES]
    if not logicals:
        return out
    client, role = session.client("lambda"), _role(session, resolver.stack)
    for logical in logicals:
        props = resolver.resources[logical].get("Properties", {})
        name, arn = function_name(resolver, logical), function_arn(resolver, logical)
        with contextlib.suppress(client.exceptions.ResourceConflictException):
            client.create_function(FunctionName=name, Runtime=RUNTIME, Role=role,
                                   Handler=str(props.get("Handler", "index.handler")),
                                   Code={"ZipFile": _placeholder_zip()}, Timeout=900)
        resolver.attributes[(logical, "Arn")] = arn
        out[logical] = arn
    return out


def definition(resolver: Resolver, logical: str, template_dir: Path) -> str:
    """The state machine's definition as deployed: file or inline, substitutions applied."""
    spec = resolver.resources[logical]
    props = spec.get("Properties", {})
    if "DefinitionUri" in props or "DefinitionS3Location" in props:
        uri = props.get("DefinitionUri", props.get("DefinitionS3Location"))
        if not isinstance(uri, str):
            raise ValueError(f"{logical}: only a local DefinitionUri runs locally, not {uri!r}")
        path = template_dir / uri
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):  # SAM takes an ASL file in YAML too
            import yaml

            text = json.dumps(yaml.safe_load(text))
    elif "DefinitionString" in props:
        text = as_json_string(resolver.resolve(props["DefinitionString"]))
    elif "Definition" in props:
        text = json.dumps(resolver.resolve(props["Definition"]))
    else:
        raise ValueError(f"{logical} has no definition")
    values = {k: resolver.resolve(v) for k, v in props.get("DefinitionSubstitutions", {}).items()}

    def sub(m: re.Match[str]) -> str:
        value = values[m.group(1)]
        return str(value).lower() if isinstance(value, bool) else str(value)

    if values:
        text = re.sub(r"\$\{(" + "|".join(map(re.escape, values)) + r")\}", sub, text)
    try:
        json.loads(text)
    except ValueError as e:
        raise ValueError(f"{logical}: the definition is not JSON once substituted: {e}") from e
    return text


def create_state_machines(session: Any, resolver: Resolver, template_dir: Path) -> dict[str, str]:
    """Create the template's state machines (and, first, its Lambda functions) on moto;
    logical id → state machine ARN. `enable_execution` must have run before."""
    create_functions(session, resolver)
    logicals = [lg for lg, s in resolver.resources.items() if s["Type"] in STATE_MACHINE_TYPES]
    for logical in logicals:  # first, so that a definition can name another machine
        resolver.attributes[(logical, "Arn")] = state_machine_arn(resolver, logical)
        resolver.attributes[(logical, "Name")] = state_machine_name(resolver, logical)
    out: dict[str, str] = {}
    if not logicals:
        return out
    sfn, role = session.client("stepfunctions"), _role(session, resolver.stack)
    for logical in logicals:
        props = resolver.resources[logical].get("Properties", {})
        kind = str(resolver.resolve(props.get("Type", props.get("StateMachineType", "STANDARD"))))
        text = definition(resolver, logical, template_dir)
        arn = state_machine_arn(resolver, logical)
        try:
            sfn.create_state_machine(name=state_machine_name(resolver, logical), definition=text,
                                     roleArn=role, type=kind)
        except sfn.exceptions.StateMachineAlreadyExists:
            sfn.update_state_machine(stateMachineArn=arn, definition=text, roleArn=role)
        out[logical] = arn
    return out


def _role(session: Any, stack: str) -> str:
    """A role the functions and the state machines run as (moto's Lambda wants it to exist)."""
    iam, name = session.client("iam"), f"{stack}-local-execution"[:64]
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"]["Arn"])


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    raise NotImplementedError\n")
    return buffer.getvalue()


# --- progress, shared by the router and the waits (quiescence reads it) ------------------------
_progress_lock = threading.Lock()
_progress = 0


def _bump() -> None:
    global _progress
    with _progress_lock:
        _progress += 1


# --- Lambda invokes ------------------------------------------------------------------------------
class LambdaRouter:
    """Routes moto's Lambda invokes to `call(logical_or_name, event) -> result` in-process.

    `names` (a dict of its own) maps function names to logical ids (a name it lacks is passed as
    it is); it is read at each invoke, so it may be filled later (`router.names.update(...)`).
    With `serialize`, one handler runs at a time (the handlers share os.environ and module state
    in this process); Map iterations still interleave between invokes. A handler that raises
    gives what Lambda gives: `FunctionError: Unhandled` and {"errorType", "errorMessage",
    "stackTrace"}, which a state machine's Retry/Catch sees as the error named `errorType`."""

    def __init__(self, call: Callable[[str, dict[str, Any]], Any],
                 names: Mapping[str, str] | None = None, serialize: bool = True):
        self.call, self.names = call, dict(names or {})
        self.invocations = 0
        self._lock: Any = threading.RLock() if serialize else _NoLock()
        self._original: Any = None

    def install(self) -> LambdaRouter:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        if self._original is None:
            self._original = LambdaSimpleBackend.__dict__["invoke"]
            router = self

            def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any,
                       headers: Any, response_headers: Any) -> bytes:
                return router._invoke(backend, function_name, qualifier, body, headers,
                                      response_headers)

            LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        if self._original is not None:
            LambdaSimpleBackend.invoke = self._original  # type: ignore[method-assign]
            self._original = None

    def __enter__(self) -> LambdaRouter:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _invoke(self, backend: Any, name_or_arn: str, qualifier: str | None, body: Any,
                headers: Any, response_headers: dict[str, Any]) -> bytes:
        fn = backend.get_function(name_or_arn, qualifier)  # moto's 404 for an unknown function
        target = self.names.get(fn.function_name, fn.function_name)
        kind = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
        if kind == "DryRun":
            return b""
        if isinstance(body, bytes | bytearray):
            body = body.decode()
        event = json.loads(body) if body else {}
        _bump()
        try:
            with self._lock:
                self.invocations += 1
                result = self.call(target, event)
            payload = json.dumps(result, default=str).encode()
        except Exception as e:  # noqa: BLE001 - the function failed: Lambda reports it
            LOG.warning("Lambda %s raised %s: %s", target, type(e).__name__, e)
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e),
                                  "stackTrace": traceback.format_tb(e.__traceback__)}).encode()
        finally:
            _bump()
        if kind == "Event":
            return b""
        response_headers["Content-Length"] = str(len(payload))
        return payload


def route_lambda_invokes(call: Callable[[str, dict[str, Any]], Any],
                         names: Mapping[str, str] | Resolver | None = None,
                         serialize: bool = True) -> LambdaRouter:
    """Install and return a `LambdaRouter`: every invoke on moto's Lambda (use_docker False)
    calls `call(logical id, or the name if unknown, event dict)` and returns its JSON result.
    `names`: function name → logical id, or a Resolver to read them from."""
    if isinstance(names, Resolver):
        names = lambda_names(names)
    return LambdaRouter(call, names, serialize).install()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


# --- simulated waits ----------------------------------------------------------------------------
class WaitCancelled(Exception):  # noqa: N818 - what the execution's error says
    """Raised in a blocked Wait by `SimulatedWaits.cancel_all`: its execution fails."""


@dataclass(eq=False)
class _Blocked:
    target: datetime
    env: Any  # moto's Environment (None for a Retry interval)
    released: bool = False
    cancelled: bool = False

    def holding(self) -> bool:
        return not self.released and not self.cancelled and (
            self.env is None or self.env.is_running())


_installed: SimulatedWaits | None = None
_THREADING = threading.__file__


class SimulatedWaits:
    """Wait states on a simulated clock.

    A Wait state's target is: Timestamp/TimestampPath as written (UTC; moto truncates fractions
    of a second), Seconds/SecondsPath from `now()` when the state is entered. A target at or
    before `now()` passes at once; a later one blocks until `advance_to` reaches it (or the
    execution is stopped). `now()` is `clock()` when a clock is given (set it to t before
    `advance_to(t)`: during `advance_to(t)` the floor is t), otherwise an own clock that
    `advance_to` moves forward, starting at `start` (default: the real time).

    Retry intervals: "instant" (default: no sleep, each asked interval kept in `retry_delays`),
    "simulated" (a wait of that length on the simulated clock, seen in `pending()`), or "real".
    """

    def __init__(self, clock: Callable[[], datetime] | None = None,
                 start: datetime | None = None, retries: str = "instant"):
        if retries not in ("instant", "simulated", "real"):
            raise ValueError(f"retries: instant, simulated or real, not {retries!r}")
        self.clock, self.retries = clock, retries
        self._own_now = _utc(start) if start else datetime.now(UTC).replace(microsecond=0)
        self._floor: datetime | None = None
        self._cond = threading.Condition()
        self._blocked: dict[int, _Blocked] = {}  # thread ident → its blocked wait
        self.retry_delays: list[float] = []
        self.waits_entered = 0
        self._threads_gone = 0
        self._saved: tuple[Any, Any] | None = None

    # --- patching moto -----------------------------------------------------------------------
    def install(self) -> SimulatedWaits:
        global _installed
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        if _installed is self:
            return self
        if _installed is not None:
            raise RuntimeError("another SimulatedWaits is installed: uninstall it first")
        self._saved = (WaitFunction.__dict__["_eval_body"], retrier_decl.time)
        WaitFunction._eval_body = _wait_eval_body  # type: ignore[method-assign]
        retrier_decl.time = _RetryTime(self)  # type: ignore[assignment]
        _installed = self
        return self

    def uninstall(self) -> None:
        """Restore moto; every blocked wait goes on at once."""
        global _installed
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        if _installed is not self or self._saved is None:
            return
        WaitFunction._eval_body, retrier_decl.time = self._saved  # type: ignore[method-assign]
        self._saved, _installed = None, None
        with self._cond:
            for blocked in self._blocked.values():
                blocked.released = True
            self._cond.notify_all()

    def __enter__(self) -> SimulatedWaits:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # --- the clock ---------------------------------------------------------------------------
    def now(self) -> datetime:
        now = _utc(self.clock()) if self.clock else self._own_now
        return max(now, self._floor) if self._floor else now

    def pending(self) -> list[datetime]:
        """Targets (aware UTC) of the waits blocked now, soonest first."""
        with self._cond:
            return sorted(b.target for b in self._blocked.values() if b.holding())

    def advance_to(self, t: datetime, timeout: float = 30.0) -> None:
        """Release every blocked wait whose target is at or before t, then return once every
        execution has finished or is blocked in a wait after t (or on something outside time:
        a task token, an activity). TimeoutError after `timeout` real seconds."""
        t = _utc(t)
        with self._cond:
            if self.clock is None:
                self._own_now = max(self._own_now, t)
            self._floor = t
            for blocked in self._blocked.values():
                if blocked.target <= t:
                    blocked.released = True
            self._cond.notify_all()
        try:
            self.wait_idle(timeout)
        finally:
            with self._cond:
                self._floor = None

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Return once every execution has finished or is blocked (in a wait not yet due by
        `advance_to`, or on something outside time). Releases nothing."""
        deadline, previous = time.monotonic() + timeout, None
        while True:
            seen = self._quiet()
            if seen is not None:
                state, exact = seen
                if exact or state == previous:
                    return
                previous = state
            else:
                previous = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions still running after {timeout} s: "
                                   + "; ".join(self._busy()))
            time.sleep(0.01 if seen is not None else 0.002)

    def cancel_all(self) -> int:
        """Make every blocked wait raise `WaitCancelled` (its execution fails): before a
        `/moto-api/reset`, so no orphan execution wakes later. Returns how many."""
        with self._cond:
            holding = [b for b in self._blocked.values() if b.holding()]
            for blocked in holding:
                blocked.cancelled = True
            self._cond.notify_all()
        return len(holding)

    # --- blocking ----------------------------------------------------------------------------
    def block_until(self, env: Any, target: datetime) -> None:
        """Block the calling execution thread until `target` is released (or env stops)."""
        target = _utc(target)
        with self._cond:
            self.waits_entered += 1
            _bump()
            if target <= self.now():
                return
            blocked = _Blocked(target, env)
            ident = threading.get_ident()
            self._blocked[ident] = blocked
            try:
                while blocked.holding():
                    self._cond.wait(0.25)  # also sees a StopExecution within 0.25 s
            finally:
                self._blocked.pop(ident, None)
                _bump()
        if blocked.cancelled:
            raise WaitCancelled(f"wait until {target.isoformat()} cancelled")

    # --- quiescence --------------------------------------------------------------------------
    def _quiet(self) -> tuple[tuple[int, int, int], bool] | None:
        """None while a Step Functions thread can make progress; else (a fingerprint of the
        threads and of the progress made, whether "blocked" is certain for every thread)."""
        from moto.stepfunctions.parser.utils import TMP_THREADS

        # moto appends every thread it starts to TMP_THREADS and never removes one: drop the
        # finished ones at its head (started: an ident; never a thread not started yet).
        finished = 0
        for thread in TMP_THREADS:
            if thread.ident is None or thread.is_alive():
                break
            finished += 1
        if finished:
            del TMP_THREADS[:finished]  # one operation: appends meanwhile go to the end
            self._threads_gone += finished
        threads = list(TMP_THREADS)
        alive = [t for t in threads if t.is_alive()]
        frames = sys._current_frames()
        exact = True
        with self._cond:
            blocked = dict(self._blocked)
        for thread in alive:
            if thread.ident in blocked:
                if blocked[thread.ident].holding():
                    continue
                return None
            verdict = _blocked_on_sync(frames.get(thread.ident))  # type: ignore[arg-type]
            if verdict is None:
                return None
            exact = exact and verdict
        with _progress_lock:
            progress = _progress
        return (self._threads_gone + len(threads), len(alive), progress), exact

    def _busy(self) -> list[str]:
        from moto.stepfunctions.parser.utils import TMP_THREADS

        frames, out = sys._current_frames(), []
        for thread in TMP_THREADS:
            frame = frames.get(thread.ident or -1) if thread.is_alive() else None
            if frame is not None and thread.ident not in self._blocked \
                    and _blocked_on_sync(frame) is None:
                out.append(f"{thread.name} at {frame.f_code.co_filename}:{frame.f_lineno}")
        return out or ["(threads blocked on a condition only)"]


def _blocked_on_sync(frame: Any) -> bool | None:
    """Is this thread blocked on a threading primitive (True: certainly; False: a Condition,
    maybe notified already)? None: it is running (or starting, or ending)."""
    if frame is None or frame.f_code.co_filename != _THREADING:
        return None
    outer = frame
    while outer.f_back is not None and outer.f_back.f_code.co_filename == _THREADING:
        outer = outer.f_back
    name, owner = outer.f_code.co_name, outer.f_locals.get("self")
    if name == "join" and isinstance(owner, threading.Thread):
        return True if owner.is_alive() else None
    if name == "wait" and isinstance(owner, threading.Event):
        return True if not owner.is_set() else None
    if name == "wait" and isinstance(owner, threading.Condition):
        return False
    return None


def _wait_eval_body(self: Any, env: Any) -> None:
    """WaitFunction._eval_body on the simulated clock (moto's: wait_function.py, the target
    computed by `_get_wait_seconds` against the naive local now(), then Event.wait)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import (
        Timestamp,
    )

    waits = _installed
    if waits is None:  # uninstalled meanwhile: wait as moto would
        self._wait_interval(env=env, wait_seconds=self._get_wait_seconds(env=env))
        return
    if isinstance(self, Timestamp):  # Timestamp and TimestampPath
        self.string.eval(env=env)
        text = env.stack.pop()
        at = self._from_timestamp_string(timestamp=text) if isinstance(text, str) else None
        if at is None:
            raise FailureEventException(self._create_failure_event(env, text))
        target = at.replace(tzinfo=UTC)
    else:  # Seconds, SecondsPath (and SecondsJSONata)
        target = waits.now() + timedelta(seconds=self._get_wait_seconds(env=env))
    waits.block_until(env, target)


class _RetryTime:
    """Stands for the `time` module in moto's retrier_decl.py (only time.sleep is used there)."""

    def __init__(self, waits: SimulatedWaits):
        self._waits = waits

    def sleep(self, seconds: float) -> None:
        waits = self._waits
        waits.retry_delays.append(seconds)
        if waits.retries == "real":
            time.sleep(seconds)
        elif waits.retries == "simulated":
            waits.block_until(None, waits.now() + timedelta(seconds=seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
