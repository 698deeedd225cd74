"""Types of the native extension built from native/ (Rust): the `/convert` fast path (see `fastconvert`)."""

Moves = list[tuple[list[str], list[str]]]
Shapes = list[list[tuple[str, int | None, int | None]]]
Plan = tuple[str, str, Moves, Shapes]

class ReviewConverter:
    """Answers ConversionReviews of the kinds it is built with: (group, kind, served group/versions, plans), each
    plan (from group/version, to group/version, moves, shapes with the top-level model first)."""

    def __init__(self, annotation: str, kinds: list[tuple[str, str, list[str], list[Plan]]]) -> None: ...
    def convert(self, body: bytes, /) -> bytes | None:
        """The answer to the ConversionReview `body`, or None for the Python path to answer it."""
