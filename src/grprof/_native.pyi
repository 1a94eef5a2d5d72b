# Types of the optional Rust extension (native/src/lib.rs).
from collections.abc import Callable, Sequence
from typing import Any

class Scanner:
    def __init__(self) -> None: ...
    def feed(self, chunk: bytes) -> None: ...
    def finish(
        self, frame: Callable[[str, str, int], Any], signatures: bool = True, stack: type | None = None
    ) -> dict[str, Any]:
        """The scan's result (see formats/traceback.py `_from_native`): columns, header texts,
        and the distinct stacks parsed as `parse_stacks` gives them (no stack texts; with
        `stack`, the `Stack` class, as `Stack` objects rather than rows), with a
        `dumper` byte per distinct stack and, with `signatures` and from 2,000 stacks,
        `signatures`: a `PendingSignatures` hashing each stack's default-similarity signature
        (else None). A scanner is used once: RuntimeError after this."""

class PendingSignatures:
    def result(self) -> list[str]:
        """Each stack's signature, in order, once hashed on the other threads (waits for them
        without the GIL)."""
    def __len__(self) -> int:
        """The number of stacks being hashed (known without waiting)."""

def decode_pprof(
    data: bytes,
    frame: Callable[[str, str, int], Any],
    stop: Callable[[Any], bool] | None = None,
    stack: type | None = None,
    rules: object = None,
    signatures: bool = False,
) -> dict[str, Any]:
    """A gunzipped goroutine profile.proto decoded (see formats/pprof.py `_from_native`);
    ValueError(message, offset) when malformed. With `stack` and `rules` (and `frame` a
    class), frames and stacks are objects kept across calls (native/src/objcache.rs), and
    with `signatures`, from 2,000 stacks, `signatures` is a `PendingSignatures` (else None)."""

def parse_debug1(
    data: bytes,
    frame: Callable[[str, str, int], Any],
    stop: Callable[[Any], bool],
    stack: type | None = None,
    rules: object = None,
    signatures: bool = False,
) -> dict[str, Any]:
    """One or more debug=1 text profiles read (see formats/debug1.py `_from_native`); errors
    are returned as data under "error", never raised. With `stack` and `rules`, frames and
    stacks are objects kept across calls, and each profile's `signatures` are, as for
    `decode_pprof`."""

def parse_stacks(
    texts: list[bytes], frame: Callable[[str, str, int], Any]
) -> tuple[list[tuple[tuple[Any, ...], bool, Any | None]], bytes, bytes]:
    """A debug=2 dump's distinct stack texts parsed (see formats/traceback.py `parse_stacks`):
    the distinct stacks, each text's stack (int64 bytes), each text's dangling flag (a byte)."""

def signatures_of(
    stacks: Sequence[Any], argkeys: list[int] | None = None, loose: Callable[[str], str] | None = None
) -> list[str]:
    """Each stack's group signature (see aggregate.py `signatures`): exact similarity with
    `argkeys` (one per stack), loose with `loose` (`loose_function`), else default."""

def loose_groups_of(
    stacks: Sequence[Any], loose: Callable[[str], str]
) -> tuple[list[int], list[int], list[str]]:
    """Stacks grouped by loose text (see aggregate.py `_loose_groups`): each stack's group,
    each group's first stack, each group's signature."""

def stack_tree_of(groups: Sequence[Any], node: Callable[..., Any]) -> Any:
    """The stack tree of `groups` (see aggregate.py `stack_tree`), its nodes made with
    `node(name, count, self_count, frame, children)`; OverflowError past int64 counts."""

def untrack_groups(groups: Sequence[Any], array: type, counts: type) -> None:
    """Untrack `groups` and their `ids`, `orphans` and `creators` of type `array` or `counts`
    (and a `counts`' `creator_of`) from the cyclic collector (see aggregate.py `_untrack`)."""

def attach_members(
    groups: dict[int, Any],
    keys: Sequence[int],
    ids: Sequence[int],
    creator: Sequence[int],
    array: type,
    counts: type,
    untrack: bool,
) -> None:
    """Set each group's `ids`, `orphans` and `creators` (see aggregate.py `_attach_members`);
    with `untrack`, the groups and what is made for them leave the cyclic collector's lists."""
