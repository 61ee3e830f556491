"""Named fakes with the engines' interfaces, for unit tests (they live in
stages/engines/fake.py, which the orchestration benchmark's `models.engine = "fake"` uses)."""

from stages.engines.fake import FakeDiarizer, FakeEncoder, FakeTranscriber, segment, words

__all__ = ["FakeDiarizer", "FakeEncoder", "FakeTranscriber", "segment", "words"]
