"""The step judges: one :class:`~conformance.core.judges.base.ActiveStep` class per kind of step.

A new kind of step is a model class (:mod:`conformance.core.model`), its parser in the loader, and a judge here,
registered in :func:`judge_for`. The engine (:mod:`conformance.core.engine`) never needs to change.

May import: the rest of :mod:`conformance.core` (never the engine, which imports this package).
"""

from __future__ import annotations

from ..model import AppResultStep, AppStep, AssertStep, ExpectStep, SendStep, SilenceStep, StateStep, Step, WithholdStep
from ..steps import describe_pattern
from ..values import format_duration
from .app import AgentCommand, AppResult
from .base import ActiveStep, Context, Progress, Sequence
from .segments import Assert, Expect, Send, Silence
from .state import BLACK_BOX, state_judge
from .withhold import Withhold

__all__ = ["BLACK_BOX", "ActiveStep", "Context", "Progress", "Sequence", "judge_for"]


def judge_for(step: Step, ctx: Context) -> ActiveStep:
    """The judge that plays `step`."""
    if isinstance(step, SendStep):
        return Send(step)
    if isinstance(step, ExpectStep):
        description = describe_pattern(step.pattern, step.window_)
        description += f", each until {step.until}" if step.until else ""
        description += f", each until one acknowledges {step.until_ack}" if step.until_ack is not None else ""
        description += ", repeats judged" if step.judge_repeats else ""
        return Expect(
            step,
            step.pattern,
            step.window_,
            description,
            step.label,
            step.bind,
            until=step.until,
            until_ack=step.until_ack,
            segments=step.segments,
            judge_repeats=step.judge_repeats,
        )
    if isinstance(step, SilenceStep):
        judged = ", repeats judged" if step.judge_repeats else ""
        return Silence(step, step.seconds, f"silence for {format_duration(step.seconds)}{judged}", step.judge_repeats)
    if isinstance(step, AssertStep):
        return Assert(step)
    if isinstance(step, WithholdStep):
        return Withhold(step)
    if isinstance(step, AppStep):
        description = f"app {step.do}" + "".join(f" {k}={v}" for k, v in step.args)
        return AgentCommand(step, description, cmd=step.do)
    if isinstance(step, StateStep):
        return state_judge(ctx, step)
    if isinstance(step, AppResultStep):
        return AppResult(step)
    raise TypeError(f"no judge for {type(step).__name__}")
