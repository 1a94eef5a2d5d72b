"""Classification from stacks and source, never from function names (issue 14).

tests/goapps/liars parks goroutines whose names lie: a context leak in `pumpChannel`, a plain
channel leak in `waitCtx`, a ticker leak in `handleRequest`, a channel leak in `tickLoop`, a
time.AfterFunc callback leak in `consume`, a fan-out in `fanOut`, and more. The program is
built and run, its real dumps are scraped in every format, and each group is classified:

- from the stack alone, honestly: a `<-ctx.Done()` or ticker wait parks in the runtime's
  channel frames, so it is `channel`; an AfterFunc callback is `timer` where debug=2 shows
  `created by time.goFunc`;
- with the source (`--source tests/goapps/liars`), from the blocking statement, which
  decides, and the explanation says so;
- renamed: the same stacks with every function of the program renamed classify the same.

The fixes are filled in from what was seen: the cancel function and its line, the ticker to
stop, and a buffer of one slot per sender (3 for a fan-out of 3).
"""

from __future__ import annotations

import pytest
from liars import FORMATS, LIARS, TRUTH, group_at, record, renamed

from grprof.detect.rules import RuleSet, load_rules
from grprof.detect.source import WAIT_CATEGORIES, confirm, wait_at
from grprof.model import Snapshot

pytestmark = pytest.mark.slow

MAIN_GO = (LIARS / "main.go").read_text().splitlines()


def line_of(text: str) -> int:
    """The 1-based line of main.go that holds `text`."""
    (n,) = [i for i, line in enumerate(MAIN_GO, 1) if text in line]
    return n


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(entry_points=False)


@pytest.fixture(scope="module")
def dumps() -> dict[str, Snapshot]:
    return record()


CASES = [pytest.param(fn, fmt, id=f"{fn}-{fmt}") for fn in sorted(TRUTH) for fmt in FORMATS]


@pytest.mark.parametrize(("function", "fmt"), CASES)
def test_from_the_stack_alone(rules: RuleSet, dumps: dict[str, Snapshot], function: str, fmt: str) -> None:
    stack, _ = TRUTH[function]
    g = group_at(dumps[fmt], function)
    ex = rules.classify(g)
    assert ex is not None, (fmt, function, g.states)
    assert ex.category == stack.get(fmt, stack.get("*")), (fmt, function, ex.rule, g.states)
    basis = ex.explanation.splitlines()[-1]
    assert basis.startswith(f"Category {ex.category} from the stack: "), basis


@pytest.mark.parametrize(("function", "fmt"), CASES)
def test_the_source_decides(rules: RuleSet, dumps: dict[str, Snapshot], function: str, fmt: str) -> None:
    _, (category, rule) = TRUTH[function]
    g = group_at(dumps[fmt], function)
    assert g.site is not None
    ex = rules.classify(g, source_dir=LIARS)
    assert ex is not None
    assert ex.category == category, (fmt, function, ex.rule)
    if rule:
        assert ex.rule == rule, (fmt, function)
    stack_only = rules.classify(g)
    assert stack_only is not None
    basis = ex.explanation.splitlines()[-1]
    statement = MAIN_GO[g.site.line - 1].strip()
    if ex.rule != stack_only.rule:
        # The source decided: it says so, citing the blocking line, and what the stack said.
        assert basis.startswith(f"Category {category} from the source: main.go:{g.site.line} `{statement}`")
        assert f"Without it, the stack alone says {stack_only.category}" in basis
    else:
        assert basis.startswith(f"Category {category} from the stack: ")
        assert f"The source agrees: main.go:{g.site.line} `{statement}`" in basis
    wait = wait_at(LIARS, g)
    assert wait is not None and WAIT_CATEGORIES[wait.kind] == wait.category == category


@pytest.mark.parametrize("fmt", FORMATS)
def test_names_never_decide_the_category(rules: RuleSet, dumps: dict[str, Snapshot], fmt: str) -> None:
    checked = 0
    for g in dumps[fmt].groups():
        if rules.ignored(g):
            continue
        before, after = rules.classify(g), rules.classify(renamed(g))
        assert (before and before.category) == (after and after.category), (fmt, g.site, g.states)
        checked += 1
    assert checked >= len(TRUTH)


# ---------------------------------------------------------------------------------------------
# Fixes filled in from what was seen


def test_fix_names_the_missing_cancel(rules: RuleSet, dumps: dict[str, Snapshot]) -> None:
    made = line_of("ctx, cancel := context.WithCancel(context.Background())")
    for fmt in FORMATS:
        ex = rules.classify(group_at(dumps[fmt], "main.pumpChannel"), source_dir=LIARS)
        assert ex is not None and ex.rule == "context-cancel-not-called"
        assert f"// at main.go:{made}: keep the cancel function" in ex.fix
        assert "defer cancel()" in ex.fix
        assert f"context.WithCancel(context.Background()) (at main.go:{made})" in ex.explanation
        assert "whose cancel function cancel is never called" in ex.explanation
    # A discarded cancel (`ctx, _ := context.WithTimeout(...)`): the fix names one to keep.
    timeout = line_of("ctx, _ := context.WithTimeout")
    ex = rules.classify(group_at(dumps["debug=2"], "main.sendBatch"), source_dir=LIARS)
    assert ex is not None and f"main.go:{timeout}" in ex.fix and "defer cancel()" in ex.fix
    assert "is discarded (_) (it ends only at its deadline)" in ex.explanation
    # The source check confirms the forever-wait of WithCancel(Background), not the timeout.
    report = confirm(LIARS, group_at(dumps["debug=0"], "main.pumpChannel"))
    assert report is not None and report.pattern == "ctx-background"
    assert report.suggestion is not None and f"(main.go:{made})" in report.suggestion
    report = confirm(LIARS, group_at(dumps["debug=2"], "main.sendBatch"))
    assert report is not None and report.pattern is None


def test_fix_names_the_ticker_to_stop(rules: RuleSet, dumps: dict[str, Snapshot]) -> None:
    made = line_of("t := time.NewTicker(time.Hour)")
    for fmt in FORMATS:
        g = group_at(dumps[fmt], "main.handleRequest")
        ex = rules.classify(g, source_dir=LIARS)
        assert ex is not None and ex.rule == "timer-ticker-loop"
        assert "defer t.Stop()" in ex.fix
        assert f"the next tick of t (main.go:{made})" in ex.explanation
        report = confirm(LIARS, g)
        assert report is not None and report.pattern == "ticker-never-stopped"
        assert report.suggestion is not None and f"(t, made at main.go:{made})" in report.suggestion
        assert "defer t.Stop()" in report.suggestion


def test_fan_out_buffer_is_one_slot_per_sender(rules: RuleSet, dumps: dict[str, Snapshot]) -> None:
    """fanOut starts 3 senders on an unbuffered channel per call and gives up after 1 ms: the
    stack (3 goroutines per creator goroutine, debug=2) and the source (the loop's bound) both
    say a buffer of 3, not 1."""
    made = line_of("results := make(chan string)")
    fan = group_at(dumps["debug=2"], "main.fanOut.func1")
    assert fan.count == 9 and sorted(fan.creators.values()) == [3, 3, 3]
    ex = rules.classify(fan)
    assert ex is not None and ex.category == "channel"
    assert "ch := make(chan T, 3)" in ex.fix
    assert "Blocked per call: 3 (3 per creator goroutine: 9 goroutines from 3" in ex.explanation
    ex = rules.classify(fan, source_dir=LIARS)
    assert ex is not None and "results := make(chan string, 3)" in ex.fix
    assert f"the loop at main.go:{made + 1} starts 3 in the source" in ex.explanation
    report = confirm(LIARS, fan)
    assert report is not None and report.pattern == "unbuffered-send-after-timeout"
    assert report.suggestion is not None
    assert f"main.go:{made}: results := make(chan string, 3)" in report.suggestion
    assert "3 goroutines send on it per call (the loop at main.go:" in report.suggestion
    # debug=0 records no creators: without the source, 1 is assumed, and said so.
    ex = rules.classify(group_at(dumps["debug=0"], "main.fanOut.func1"))
    assert ex is not None and "ch := make(chan T, 1)" in ex.fix and "1 assumed" in ex.explanation
    ex = rules.classify(group_at(dumps["debug=0"], "main.fanOut.func1"), source_dir=LIARS)
    assert ex is not None and "results := make(chan string, 3)" in ex.fix


def test_first_answer_wins_leaves_the_other_senders_blocked(
    rules: RuleSet, dumps: dict[str, Snapshot]
) -> None:
    """firstOf asks 3 replicas and keeps the first answer: 2 senders per call stay blocked
    (what the stack sees); the source shows 3 senders and 1 receive (one slot per sender)."""
    made = line_of("replies := make(chan string)")
    first = group_at(dumps["debug=2"], "main.firstOf.func1")
    assert sorted(first.creators.values()) == [2, 2, 2]
    ex = rules.classify(first)
    assert ex is not None and "ch := make(chan T, 2)" in ex.fix
    ex = rules.classify(first, source_dir=LIARS)
    assert ex is not None and "replies := make(chan string, 3)" in ex.fix
    for fmt in FORMATS:
        report = confirm(LIARS, group_at(dumps[fmt], "main.firstOf.func1"))
        assert report is not None and report.pattern == "fan-out-first-wins"
        assert report.suggestion is not None
        assert f"main.go:{made}: replies := make(chan string, 3)" in report.suggestion
        assert "but the caller takes 1 value and the buffer holds 0: 2 of them block" in report.suggestion


def test_what_each_goroutine_waits_on(dumps: dict[str, Snapshot]) -> None:
    kinds = {
        "main.pumpChannel": "ctx-cancel-not-called",
        "main.sendBatch": "ctx-cancel-not-called",
        "main.relayChannel.func1": "ctx-never-cancelled",
        "main.waitCtx": "chan-receive",
        "main.tickLoop": "chan-range",
        "main.fanOut.func1": "chan-send",
        "main.firstOf.func1": "chan-send",
        "main.awaitCancel": "chan-receive",
        "main.handleRequest": "ticker",
        "main.watchContext": "timer-loop",
        "main.consume": "afterfunc-callback",
    }
    assert set(kinds) == set(TRUTH)
    for fmt in FORMATS:
        for function, kind in kinds.items():
            wait = wait_at(LIARS, group_at(dumps[fmt], function))
            assert wait is not None and wait.kind == kind, (fmt, function, wait)
    # The AfterFunc is found in the code even where the dump records no creator (debug=0/1).
    wait = wait_at(LIARS, group_at(dumps["debug=0"], "main.consume"))
    assert wait is not None
    assert (
        wait.detail
        == f"consume runs as the callback of time.AfterFunc at main.go:{line_of('time.AfterFunc(')}"
    )
