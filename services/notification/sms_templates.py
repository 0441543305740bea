"""SMS as mainland gateways take it: a registered sign name (短信签名), a template code (模板 CODE) and the
template's parameters, not free text.

Providers (Aliyun ``SendSms``, Tencent Cloud ``SendSms`` and the rest) send only wording that was registered
and approved beforehand, with ``${name}`` variables filled in from short string parameters. The file
``SANJI_NOTIFICATION_SMS_TEMPLATES_FILE`` (default ``services/notification/sms-templates.yaml``) maps each
resident SMS kind to its provider template: the code, the registered wording (for the record, for the
development sink and for the start-up check) and, for each variable, a Jinja expression over the message's
context (the same context the ``<kind>.sms.j2`` template renders for gateways that take free text).

Checked at start, like the Jinja templates: every SMS kind of the rules has a template and no unknown kind is
listed; every ``${variable}`` of the wording has a parameter and every parameter a variable; names follow
the providers' rule; every expression renders, non-empty and short enough, with the contexts of the sample
events. A value longer than ``MAX_PARAM_CHARS`` at run time is cut (…); a value that holds an ID number, a
phone number or an e-mail address is replaced, whatever an event carried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from jinja2 import Environment, StrictUndefined, TemplateError, UndefinedError

from shared.logging import redact_text

# Mainland providers cap a notification template's variable; 35 characters is Aliyun's cap for most variable
# types. Wording that needs longer values belongs in the registered text, not in a parameter.
MAX_PARAM_CHARS = 35
WITHHELD = "（已隐去）"
# Providers' variable names: a letter, then letters, digits or underscores, at most 25; these few are refused.
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,24}")
RESERVED_PARAM_NAMES = frozenset({"email", "mobile", "id", "nick", "site"})
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_TEMPLATE_CODE = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class SmsTemplateProblems(Exception):
    def __init__(self, source: Path | str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"SMS templates in {source} are not usable:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class SmsTemplate:
    kind: str
    template_code: str
    text: str                      # the registered wording, with a ${name} per parameter
    params: Mapping[str, str]      # parameter name -> Jinja expression over the message context


@dataclass(frozen=True)
class SmsRequest:
    """What a template-based gateway is sent for one message (the sign name is the adapter's)."""

    template_code: str
    params: dict[str, str]


def _clean(value: str) -> str:
    value = " ".join(value.split())
    if redact_text(value) != value:  # an ID number, phone or e-mail address: never to a provider's template
        return WITHHELD
    return value if len(value) <= MAX_PARAM_CHARS else value[:MAX_PARAM_CHARS - 1] + "…"


def fill(text: str, params: Mapping[str, str]) -> str:
    """The registered wording with its variables filled in: what the resident reads."""
    return _VARIABLE.sub(lambda match: params.get(match.group(1), match.group(0)), text)


class SmsTemplates:
    def __init__(self, sign_name: str, templates: Mapping[str, SmsTemplate], source: Path | str):
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.source = source
        self._env = Environment(undefined=StrictUndefined, autoescape=False)
        self._compiled = {}
        problems = []
        for kind, template in self.templates.items():
            for name, expression in template.params.items():
                try:
                    self._compiled[(kind, name)] = self._env.from_string(expression)
                except TemplateError as exc:
                    problems.append(f"{kind}: parameter {name}: {exc.message}")
        if problems:
            raise SmsTemplateProblems(source, problems)

    @classmethod
    def load(cls, path: Path | str) -> SmsTemplates:
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SmsTemplateProblems(path, [exc.strerror or str(exc)]) from None
        except yaml.YAMLError:
            raise SmsTemplateProblems(path, ["not valid YAML"]) from None
        return cls.from_document(document, path)

    @classmethod
    def from_document(cls, document, source: Path | str) -> SmsTemplates:
        if not isinstance(document, dict) or set(document) - {"sign_name", "templates"}:
            raise SmsTemplateProblems(source, ["expected a mapping with sign_name and templates (and nothing else)"])
        problems = []
        sign_name = document.get("sign_name")
        if not isinstance(sign_name, str) or not 2 <= len(sign_name.strip()) <= 12:
            problems.append("sign_name: the registered 短信签名, 2 to 12 characters, without 【】")
            sign_name = ""
        entries = document.get("templates")
        if not isinstance(entries, dict):
            raise SmsTemplateProblems(source, [*problems, "templates: a mapping from message kind to template"])
        templates = {}
        for kind, entry in entries.items():
            if not isinstance(entry, dict) or set(entry) != {"template_code", "text", "params"}:
                problems.append(f"{kind}: needs exactly template_code, text and params")
                continue
            code, text, params = entry["template_code"], entry["text"], entry["params"]
            if not isinstance(code, str) or not _TEMPLATE_CODE.fullmatch(code):
                problems.append(f"{kind}: template_code {code!r} is not a provider template code")
                continue
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{kind}: text must be the registered wording")
                continue
            if not isinstance(params, dict) or not all(isinstance(value, str) for value in params.values()):
                problems.append(f"{kind}: params must map each ${{variable}} to an expression")
                continue
            params = {str(name): value for name, value in params.items()}
            for name in params:
                if not _PARAM_NAME.fullmatch(name) or name.lower() in RESERVED_PARAM_NAMES:
                    reserved = ", ".join(sorted(RESERVED_PARAM_NAMES))
                    problems.append(f"{kind}: {name!r} is not a name providers accept for a variable (a letter, then "
                                    f"letters, digits, underscores, at most 25; not {reserved})")
            variables = _VARIABLE.findall(text)
            missing = sorted(set(variables) - set(params))
            unused = sorted(set(params) - set(variables))
            if missing:
                problems.append(f"{kind}: the text's ${{{', '.join(missing)}}} has no parameter")
            if unused:
                problems.append(f"{kind}: parameter(s) {', '.join(unused)} not in the text")
            templates[str(kind)] = SmsTemplate(str(kind), code, text.strip(), params)
        if problems:
            raise SmsTemplateProblems(source, problems)
        return cls(sign_name.strip(), templates, source)

    def request(self, kind: str, context: Mapping) -> SmsRequest:
        """The template code and parameters of one message. Raises ``KeyError`` for a kind without a template
        (the start-up check makes that impossible) and Jinja's errors for a broken expression."""
        template = self.templates[kind]
        params = {name: _clean(self._compiled[(kind, name)].render(**dict(context))) for name in template.params}
        return SmsRequest(template.template_code, params)

    def text(self, kind: str, params: Mapping[str, str]) -> str:
        return fill(self.templates[kind].text, params)

    def check(self, kinds: Iterable[str], samples: Iterable[tuple[str, str, Mapping]]) -> list[str]:
        """Every problem, as lines naming the kind; empty when all is well. ``kinds``: every kind the rules send
        by SMS; ``samples``: (kind, channel, context) as the Jinja templates are checked with."""
        kinds = set(kinds)
        problems = [f"{kind}: no SMS template for this message kind (every resident SMS needs one)"
                    for kind in sorted(kinds - set(self.templates))]
        problems += [f"{kind}: no rule sends this kind by SMS (a misspelt kind?)"
                     for kind in sorted(set(self.templates) - kinds)]
        seen = set()
        for kind, channel, context in samples:
            if channel != "sms" or kind not in self.templates:
                continue
            for name in self.templates[kind].params:
                try:
                    value = " ".join(self._compiled[(kind, name)].render(**dict(context)).split())
                except UndefinedError as exc:
                    problem = (f"{kind}: parameter {name}: {exc.message} "
                               f"(the context has: {', '.join(sorted(context))})")
                except (TemplateError, TypeError, ValueError, AttributeError, KeyError) as exc:
                    problem = f"{kind}: parameter {name}: cannot be rendered: {type(exc).__name__}: {exc}"
                else:
                    problem = None
                    if not value:
                        problem = f"{kind}: parameter {name} renders empty (providers refuse an empty variable)"
                    elif len(value) > MAX_PARAM_CHARS:
                        problem = (f"{kind}: parameter {name} renders {len(value)} characters for a sample, more than "
                                   f"{MAX_PARAM_CHARS}")
                if problem and problem not in seen:
                    seen.add(problem)
                    problems.append(problem)
        return problems
