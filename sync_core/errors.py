"""The issue shape shared by validation results and domain errors, ready for the HTTP error body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Issue(BaseModel):
    """One problem found in a request: an English snake_case `code` and a Spanish `message` for staff."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    field: str | None = None
    details: list[dict[str, str]] = Field(default_factory=list)


class DomainError(ValueError):
    """A rule rejected the input; carries the `Issue` the HTTP layer renders as `{"error": {...}}`."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue

    @property
    def code(self) -> str:
        return self.issue.code
