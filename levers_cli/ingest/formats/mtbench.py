"""FastChat llm_judge answer files (MT-Bench, Vicuna bench): one call per answer turn.

Format (lm-sys/FastChat ``fastchat/llm_judge/gen_api_answer.py``): ``{question_id, answer_id,
model_id, choices: [{index, turns: [a1, a2]}], tstamp}``, one line per question; the
questions, ``{question_id, category, turns: [q1, q2]}``, are in a separate file, which
``gen_api_answer.py`` reads from ``data/<bench>/question.jsonl`` while it writes answers to
``data/<bench>/model_answer/<model>.jsonl``. A failed API call is written as the turn
``$ERROR$`` (``API_ERROR_OUTPUT`` in ``fastchat/llm_judge/common.py``). Arena-Hard's older
answer files use the same shape with ``{"content": …}`` turns (lmarena/arena-hard-auto
``gen_answer.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from levers_cli.errors import RecordError
from levers_cli.ingest.formats.base import MappedAdapter, PartialCall, Record
from levers_cli.ingest.formats.chat_datasets import Message, record_base, turn_calls
from levers_cli.ingest.readers import RecordSource, open_records
from levers_cli.text.content import content_text

if TYPE_CHECKING:
    from levers_cli.ingest.jsonpath import FieldPath

#: What FastChat writes as a turn when the API call failed.
FASTCHAT_API_ERROR = "$ERROR$"
#: Folders FastChat writes answers to, beside ``question.jsonl``.
ANSWER_FOLDERS = ("model_answer", "reference_answer")


def _turn_text(turn: Any) -> str:
    """A question or answer turn: a string (MT-Bench) or ``{"content": …}`` (Arena-Hard)."""
    return content_text(turn.get("content") if isinstance(turn, dict) else turn)


def sibling_questions(path: str) -> Path | None:
    """``…/question.jsonl`` beside the ``model_answer``/``reference_answer`` folder that
    holds ``path``, when it exists (FastChat's layout)."""
    folder = Path(path).parent
    sibling = folder.parent / "question.jsonl"
    if folder.name in ANSWER_FOLDERS and sibling.is_file():
        return sibling
    return None


class MTBenchAdapter(MappedAdapter):
    """MT-Bench answers joined on ``question_id`` to their questions.

    The questions file is the ``questions`` option when given, else ``question.jsonl``
    beside the answer file's folder (claimed through :meth:`claims_file`); with neither,
    every record is rejected with that reason. Each choice is its own conversation
    (``answer_id``, plus ``#<index>`` when a record has several choices); a ``$ERROR$`` turn is
    a failed call (status ``error``).
    """

    name = "mt-bench"
    description = "FastChat MT-Bench answers joined to question.jsonl; one call per turn"
    example = (
        '{"question_id": 81, "answer_id": "GjbS…", "model_id": "gpt-4", '
        '"choices": [{"index": 0, "turns": ["a1", "a2"]}], "tstamp": 1687000000.0}'
    )

    def __init__(self, mapping: dict[str, FieldPath] | None = None, **options: Any) -> None:
        super().__init__(mapping, **options)
        questions = options.get("questions")
        self._questions_path: str | None = str(questions) if questions else None
        self._questions: dict[str, Record] | None = None

    def sniff(self, record: Record) -> bool:
        """True for ``{question_id, choices: [{turns: [...]}, ...]}``."""
        choices = record.get("choices")
        return (
            "question_id" in record
            and isinstance(choices, list)
            and bool(choices)
            and isinstance(choices[0], dict)
            and isinstance(choices[0].get("turns"), list)
        )

    def claims_file(self, path: str) -> bool:
        """Claim an answer file in FastChat's layout whose first record is an MT-Bench
        answer, and remember the ``question.jsonl`` beside its folder. Never claims when the
        ``questions`` option was given (detection then picks this format as usual)."""
        if self._questions_path is not None:
            return False
        sibling = sibling_questions(path)
        if sibling is None:
            return False
        records = iter(open_records(path))
        try:
            first = next(records, None)
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
        if first is None or first.data is None or not self.sniff(first.data):
            return False
        self._questions_path = str(sibling)
        return True

    def open_file(self, path: str) -> RecordSource:
        """The answer file's records, read by the generic readers."""
        return open_records(path)

    def _load_questions(self) -> dict[str, Record] | None:
        if self._questions is None and self._questions_path is not None:
            self._questions = {
                str(raw.data["question_id"]): raw.data
                for raw in open_records(self._questions_path)
                if raw.data is not None and "question_id" in raw.data
            }
        return self._questions

    def normalize(self, record: Record) -> list[PartialCall]:
        """Two calls for a two-turn answer: (q1 → a1) and (q1, a1, q2 → a2).

        Raises:
            RecordError: no questions file, a ``question_id`` not in it, or more answer turns
                than question turns.
            InputFileError: the questions file cannot be read (the ingest stops).
        """
        questions = self._load_questions()
        if questions is None:
            raise RecordError(
                "MT-Bench answers hold no questions: give the questions file as the "
                "'questions' option, or keep question.jsonl beside the model_answer folder",
                field="question_id",
            )
        question = questions.get(str(record.get("question_id")))
        if question is None:
            raise RecordError(f"not in {self._questions_path}", field="question_id")
        prompts = [_turn_text(t) for t in question.get("turns") or []]
        base, answer_id = record_base(record, ("choices", "question_id"))
        base["metadata"]["question_id"] = record["question_id"]
        if question.get("category") is not None:
            base["metadata"]["category"] = question["category"]
        choices = record.get("choices") or []
        calls: list[PartialCall] = []
        for position, choice in enumerate(choices):
            turns = choice.get("turns") if isinstance(choice, dict) else None
            field = f"choices[{position}].turns"
            if not isinstance(turns, list) or len(turns) > len(prompts):
                raise RecordError(f"not a list of at most {len(prompts)} answers", field=field)
            messages: list[Message] = []
            for prompt, answer in zip(prompts, turns, strict=False):
                messages.append({"role": "user", "content": prompt})
                messages.append({"role": "assistant", "content": _turn_text(answer)})
            index = choice.get("index", position)
            conversation = answer_id if len(choices) == 1 else f"{answer_id}#{index}"
            for call in turn_calls(messages, base, conversation, field=field):
                if len(choices) > 1:
                    call["metadata"]["choice"] = index
                if (call.get("response") or "").strip() == FASTCHAT_API_ERROR:
                    call["status"] = "error"
                    call["error"] = "FastChat wrote $ERROR$: the API call failed"
                calls.append(call)
        return calls
