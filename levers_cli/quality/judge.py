"""Judge prompts and the parsing of their verdicts, in the published formats.

- Single-answer grading with a reference: MT-Bench's ``single-math-v1`` prompt
  (lm-sys/FastChat ``fastchat/llm_judge/data/judge_prompts.jsonl``; Zheng et al. 2023,
  "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", arXiv:2306.05685), the original
  call's answer as the reference; the verdict ends ``Rating: [[n]]`` (1-10), parsed as
  FastChat's ``one_score_pattern`` ``\\[\\[(\\d+\\.?\\d*)\\]\\]``.
- Pairwise: Arena-Hard's judge prompt (lmarena/arena-hard-auto ``config/judge_config.yaml``,
  Li et al. 2024, arXiv:2406.11939) with its five verdicts ``[[A>>B]]``, ``[[A>B]]``,
  ``[[A=B]]``, ``[[B>A]]``, ``[[B>>A]]`` (pattern ``\\[\\[([AB<>=]+)\\]\\]``); MT-Bench's
  ``[[A]]``/``[[B]]``/``[[C]]`` are read too. Each pair is judged in both orders (variant as
  B, then as A) to cancel position bias (both papers do).

A judgment is parsed only when it names exactly one distinct verdict (Arena-Hard's rule); any
other text is a reject with its line, never a grade of 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: MT-Bench ``single-math-v1`` (reference-guided single-answer grading).
SINGLE_SYSTEM = "You are a helpful assistant."
SINGLE_TEMPLATE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
    "provided by an AI assistant to the user question displayed below. Your evaluation should "
    "consider correctness and helpfulness. You will be given a reference answer and the "
    "assistant's answer. Begin your evaluation by comparing the assistant's answer with the "
    "reference answer. Identify and correct any mistakes. Be as objective as possible. After "
    "providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    'following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n"
    "[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\n{answer}\n"
    "[The End of Assistant's Answer]"
)
#: Arena-Hard's pairwise judge system prompt.
PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user prompt displayed below. You will be given assistant A's answer "
    "and assistant B's answer. Your job is to evaluate which assistant's answer is better.\n\n"
    "Begin your evaluation by generating your own answer to the prompt. You must provide your "
    "answers before judging any answers.\n\nWhen evaluating the assistants' answers, compare "
    "both assistants' answers with your answer. You must identify and correct any mistakes or "
    "inaccurate information.\n\nThen consider if the assistant's answers are helpful, relevant, "
    "and concise. Helpful means the answer correctly responds to the prompt or follows the "
    "instructions. Note when user prompt has any ambiguity or more than one interpretation, it "
    "is more helpful and appropriate to ask for clarifications or more information from the "
    "user than providing an answer based on assumptions. Relevant means all parts of the "
    "response closely connect or are appropriate to what is being asked. Concise means the "
    "response is clear and not verbose or excessive.\n\nThen consider the creativity and "
    "novelty of the assistant's answers when needed. Finally, identify any missing important "
    "information in the assistants' answers that would be beneficial to include when "
    "responding to the user prompt.\n\nAfter providing your explanation, you must output only "
    "one of the following choices as your final verdict with a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n2. Assistant A is slightly better: "
    "[[A>B]]\n3. Tie, relatively the same: [[A=B]]\n4. Assistant B is slightly better: "
    "[[B>A]]\n5. Assistant B is significantly better: [[B>>A]]\n\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)
PAIR_TEMPLATE = (
    "<|User Prompt|>\n{question}\n\n<|The Start of Assistant A's Answer|>\n{answer_a}\n"
    "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_b}\n"
    "<|The End of Assistant B's Answer|>"
)
#: Judge output cap: MT-Bench's judge calls use max_tokens 2048 (``common.py``
#: ``run_judge_single``), Arena-Hard 4096 (``judge_config.yaml``); the larger.
JUDGE_MAX_TOKENS = 4096

_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_VERDICT = re.compile(r"\[\[([AB<>=]+|[ABC])\]\]")
#: Verdict → preference for assistant A, in [-2, 2] (MT-Bench's [[C]] is a tie).
VERDICTS = {"A>>B": 2, "A>B": 1, "A=B": 0, "B=A": 0, "B>A": -1, "B>>A": -2, "A": 1, "B": -1, "C": 0}


class JudgmentError(ValueError):
    """A judgment without exactly one valid verdict."""


@dataclass(frozen=True)
class Verdict:
    """A parsed judgment: ``score`` (single: 1-10; pairwise: the variant's preference in
    [-2, 2], already turned to the variant's side) and ``verdict`` (the label as written)."""

    score: float
    verdict: str


def single_prompt(question: str, reference: str, answer: str) -> list[dict[str, str]]:
    """The chat messages of a single-answer grading request."""
    user = SINGLE_TEMPLATE.format(question=question, reference=reference, answer=answer)
    return [{"role": "system", "content": SINGLE_SYSTEM}, {"role": "user", "content": user}]


def pair_prompt(question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The chat messages of a pairwise request (assistant A first)."""
    user = PAIR_TEMPLATE.format(question=question, answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": PAIR_SYSTEM}, {"role": "user", "content": user}]


def parse_single(text: str) -> Verdict:
    """The 1-10 rating of a single-answer judgment.

    Raises:
        JudgmentError: no ``[[n]]``, several different ones, or one outside 1-10.
    """
    found = {float(m) for m in _SCORE.findall(text or "")}
    if len(found) != 1:
        what = "no [[rating]]" if not found else f"{len(found)} different [[ratings]]"
        raise JudgmentError(f"{what} in the judgment")
    score = found.pop()
    if not 1 <= score <= 10:
        raise JudgmentError(f"rating {score:g} outside 1-10")
    return Verdict(score, f"[[{score:g}]]")


def parse_pair(text: str, swapped: bool) -> Verdict:
    """The variant's preference in a pairwise judgment.

    Args:
        text: the judge's answer.
        swapped: ``False`` when the variant was assistant B (the original A), ``True`` when
            the variant was A.

    Raises:
        JudgmentError: no verdict, several different ones, or an unknown label.
    """
    found = {m for m in _VERDICT.findall(text or "")}
    if len(found) != 1:
        what = "no [[verdict]]" if not found else f"{len(found)} different [[verdicts]]"
        raise JudgmentError(f"{what} in the judgment")
    label = found.pop()
    if label not in VERDICTS:
        raise JudgmentError(f"unknown verdict [[{label}]]")
    a_pref = VERDICTS[label]
    return Verdict(float(a_pref if swapped else -a_pref), f"[[{label}]]")
