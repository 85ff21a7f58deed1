"""What a backlog run did: the counts it checked, per reason and per agency, and how long it took."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Summary:
    """What a run did. ``rows_read == rows_written + rows_rejected`` is checked before it is made."""

    input: str
    output: str
    rejects: str
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    needs_review: int = 0
    rejected_by_reason: dict = field(default_factory=dict)
    agencies: dict = field(default_factory=dict)
    chunks: int = 0
    chunks_resumed: int = 0
    jobs: int = 1
    seconds: float = 0.0
    model_version: str | None = None

    @property
    def review_share(self) -> float:
        return self.needs_review / self.rows_written if self.rows_written else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_written + self.rows_rejected

    def to_dict(self) -> dict:
        d = asdict(self)
        d["review_share"] = round(self.review_share, 6)
        d["rows_per_second"] = round(self.rows_per_second, 1)
        d["balanced"] = self.balanced
        return d

    def format(self, top: int = 10) -> str:
        """A human summary (for stderr). Holds counts and labels only, never complaint text; the
        ``top`` most frequent agencies (every count is in :meth:`to_dict`, the JSON on stdout)."""
        w = len(f"{self.rows_read:,}")
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.rejected_by_reason.items(),
                                                             key=lambda kv: -kv[1]))
        lines = [
            f"classified {self.input} -> {self.output} in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s, {self.jobs} job{'s' if self.jobs != 1 else ''}"
            + (f", {self.chunks_resumed} of {self.chunks} chunks from an earlier run" if self.chunks_resumed else "")
            + ")",
            f"  rows read      {self.rows_read:>{w},}",
            f"  rows written   {self.rows_written:>{w},}",
            f"  rows rejected  {self.rows_rejected:>{w},}" + (f"  ({reasons}) -> {self.rejects}" if reasons else ""),
            f"  needs review   {self.needs_review:>{w},}  ({100 * self.review_share:.1f}% of written)",
            f"  check: read = written + rejected: "
            f"{self.rows_read:,} = {self.rows_written:,} + {self.rows_rejected:,} "
            + ("ok" if self.balanced else "FAILED"),
        ]
        if self.agencies:
            lines.append("  per agency:")
            ranked = sorted(self.agencies.items(), key=lambda kv: (-kv[1], kv[0]))
            shown, rest = ranked[:top], ranked[top:]
            aw = max(len(a) for a, _ in shown)
            lines += [f"    {agency:<{aw}}  {n:>{w},}" for agency, n in shown]
            if rest:
                lines.append(f"    … and {len(rest)} more ({sum(n for _, n in rest):,} rows; every "
                             "agency's count is in the JSON summary on stdout)")
        return "\n".join(lines)
